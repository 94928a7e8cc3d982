// connect + listCollections, as the driver's quick start writes it.
const { MongoClient } = require('mongodb');

const client = new MongoClient(process.env.MONGODB_URI);

async function run() {
  try {
    await client.connect();
    await client.db('test').listCollections().toArray();
  } finally {
    await client.close();
  }
}
run().catch((e) => { console.error(String(e.message)); process.exit(1); });
