"""connect + ping, listCollections, or insert + find + delete, as pymongo's tutorial writes them.
Usage: python pymongo_client.py ping|list|roundtrip   (MONGODB_URI in the environment)"""
import os
import sys

from pymongo import MongoClient

client = MongoClient(os.environ["MONGODB_URI"])
try:
    what = sys.argv[1]
    if what == "ping":
        client.admin.command("ping")
    elif what == "list":
        client.test.list_collection_names()
    else:
        coll = client.test.bench
        inserted = coll.insert_one({"probe": "pymongo"}).inserted_id
        coll.find_one({"_id": inserted})
        coll.delete_one({"_id": inserted})
finally:
    client.close()
