// connect + ping, as the driver's quick start writes it (credentials from the environment).
const { MongoClient } = require('mongodb');

const client = new MongoClient(process.env.MONGODB_URI);

async function run() {
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
  } finally {
    await client.close();
  }
}
run().catch((e) => { console.error(String(e.message)); process.exit(1); });
