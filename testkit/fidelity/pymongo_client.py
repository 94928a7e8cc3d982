"""A real client for the local Atlas: pymongo with pymongo[aws], credentials from the environment.

Usage: pymongo_client.py URI OPS   (OPS: full | insert | ping)
Prints one JSON document: {"ok": true, "steps": {...}} or {"ok": false, "code": N, "message": "..."}.
"""
import json
import sys

import pymongo
from pymongo.errors import OperationFailure, PyMongoError


def main():
    uri, ops = sys.argv[1], sys.argv[2]
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000, connectTimeoutMS=3000)
    steps = {}
    try:
        db = client.get_database("test")
        if ops == "ping":
            steps["ping"] = client.admin.command("ping")["ok"]
        elif ops == "insert":
            steps["inserted"] = str(db.fidelity.insert_one({"from": "pymongo"}).inserted_id)
        else:
            steps["ping"] = client.admin.command("ping")["ok"]
            inserted = db.fidelity.insert_one({"from": "pymongo", "n": 1}).inserted_id
            steps["inserted"] = str(inserted)
            found = db.fidelity.find_one({"_id": inserted})
            steps["found"] = found is not None and found.get("from") == "pymongo"
            steps["collections"] = sorted(db.list_collection_names())
            steps["deleted"] = db.fidelity.delete_one({"_id": inserted}).deleted_count
        print(json.dumps({"ok": True, "steps": steps}))
    except OperationFailure as e:
        print(json.dumps({"ok": False, "code": e.code, "message": e.details.get("errmsg", str(e)) if e.details else str(e)}))
    except PyMongoError as e:
        print(json.dumps({"ok": False, "code": None, "message": str(e)}))
    finally:
        client.close()


main()
