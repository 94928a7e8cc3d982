// connect + insertOne + findOne + deleteOne, as the driver's CRUD guides write them.
const { MongoClient } = require('mongodb');

const client = new MongoClient(process.env.MONGODB_URI);

async function run() {
  try {
    await client.connect();
    const coll = client.db('test').collection('bench');
    const { insertedId } = await coll.insertOne({ probe: 'node' });
    await coll.findOne({ _id: insertedId });
    await coll.deleteOne({ _id: insertedId });
  } finally {
    await client.close();
  }
}
run().catch((e) => { console.error(String(e.message)); process.exit(1); });
