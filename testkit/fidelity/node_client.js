// A real client for the local Atlas: the Node driver 6 with @aws-sdk/credential-providers and aws4,
// credentials from the environment.
// Usage: node node_client.js URI OPS   (OPS: full | insert | ping)
// Prints one JSON document: {"ok": true, "steps": {...}} or {"ok": false, "code": N, "message": "..."}.
const { MongoClient } = require('mongodb');

async function main() {
  const [uri, ops] = process.argv.slice(2);
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000, connectTimeoutMS: 3000 });
  const steps = {};
  try {
    const db = client.db('test');
    if (ops === 'ping') {
      steps.ping = (await client.db('admin').command({ ping: 1 })).ok;
    } else if (ops === 'insert') {
      steps.inserted = String((await db.collection('fidelity').insertOne({ from: 'node' })).insertedId);
    } else {
      steps.ping = (await client.db('admin').command({ ping: 1 })).ok;
      const id = (await db.collection('fidelity').insertOne({ from: 'node', n: 1 })).insertedId;
      steps.inserted = String(id);
      const found = await db.collection('fidelity').findOne({ _id: id });
      steps.found = found !== null && found.from === 'node';
      steps.collections = (await db.listCollections().toArray()).map((c) => c.name).sort();
      steps.deleted = (await db.collection('fidelity').deleteOne({ _id: id })).deletedCount;
    }
    console.log(JSON.stringify({ ok: true, steps }));
  } catch (e) {
    const code = typeof e.code === 'number' ? e.code : null;
    console.log(JSON.stringify({ ok: false, code, message: String(e.errmsg || e.message) }));
  } finally {
    await client.close();
  }
}

main();
