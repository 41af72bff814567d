"""Drives astropipe's Flight SQL port with the ADBC Flight SQL driver (what DBeaver-style tools,
pandas and polars use through ADBC).

Usage: adbc_flight.py URI TOKEN RA DEC RADIUS_DEG
Prints JSON with what each call returned, for the Rust test to compare with the HTTP answers:
statements, a prepared statement bound twice, metadata (info, objects, table schema, table
types), and the errors a forbidden statement and a wrong token get.
"""
import json
import sys

import adbc_driver_flightsql.dbapi as flight_sql
from adbc_driver_flightsql import DatabaseOptions


def connect(uri, token, basic):
    if basic:
        # Handshake with HTTP Basic (user name free, the token as password).
        kwargs = {"username": "astronomer", "password": token}
    else:
        kwargs = {DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {token}"}
    return flight_sql.connect(uri, db_kwargs=kwargs)


def error_of(fn):
    try:
        fn()
    except Exception as e:  # the driver maps gRPC codes onto its own exception classes
        return {"type": type(e).__name__, "message": str(e)}
    return None


def main():
    uri, token = sys.argv[1], sys.argv[2]
    ra, dec, radius = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    out = {}
    with connect(uri, token, basic=True) as conn:
        cur = conn.cursor()
        cur.execute("SELECT count(*) AS n FROM sources")
        out["count"] = cur.fetchone()[0]
        cur.execute(
            "SELECT source_id FROM sources "
            f"WHERE cone_contains(ra, dec, {ra}, {dec}, {radius}) ORDER BY source_id"
        )
        out["cone_ids"] = [r[0] for r in cur.fetchall()]
        # Prepared: one statement, bound with two parameter sets.
        sql = "SELECT source_id FROM sources WHERE cone_contains(ra, dec, $1, $2, $3) ORDER BY source_id"
        cur.execute(sql, parameters=(ra, dec, radius))
        out["prepared_ids"] = [r[0] for r in cur.fetchall()]
        cur.execute(sql, parameters=(ra, dec, radius / 2))
        out["prepared_half_ids"] = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT flux_to_mag(1000.0, 25.0) AS m")
        out["udf"] = cur.fetchone()[0]
        out["forbidden"] = error_of(lambda: cur.execute("CREATE TABLE t AS SELECT 1"))
        out["bad_sql"] = error_of(lambda: cur.execute("SELECT nope FROM nowhere"))
        cur.close()
        info = conn.adbc_get_info()
        out["info"] = {k: (v if isinstance(v, (int, str, bool)) else str(v)) for k, v in info.items()}
        objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
        tables = {}
        for catalog in objects:
            for schema in catalog["catalog_db_schemas"] or []:
                for t in schema["db_schema_tables"] or []:
                    tables[t["table_name"]] = {
                        "catalog": catalog["catalog_name"],
                        "schema": schema["db_schema_name"],
                        "type": t["table_type"],
                        "columns": [c["column_name"] for c in (t["table_columns"] or [])],
                    }
        out["objects"] = tables
        out["sources_schema"] = conn.adbc_get_table_schema("sources").names
        out["table_types"] = conn.adbc_get_table_types()
    # The bearer header works as well as the handshake.
    with connect(uri, token, basic=False) as conn:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM exposures")
        out["exposures_bearer"] = cur.fetchone()[0]
    # A wrong token is refused.
    def wrong():
        with connect(uri, "not-the-token-at-all", basic=False) as conn:
            cur = conn.cursor()
            cur.execute("SELECT 1")
            cur.fetchall()

    out["wrong_token"] = error_of(wrong)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
