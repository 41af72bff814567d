#!/usr/bin/env python3
"""Checks the Kubernetes manifests the way CI does (tests/integration/k8s.rs runs it):

  1. every overlay renders with `kubectl kustomize`;
  2. the result passes `kubernetes-validate --strict` (offline schemas; the Prometheus
     Operator CRDs ServiceMonitor/PrometheusRule have no schema there and are only warned
     about);
  3. checkov (`--framework kubernetes`) reports no failed check (skips are annotations on the
     resources, each with its reason);
  4. every container's command line parses with the real binary (`astropipe ARGS... --help`),
     so no manifest points at a command or flag that does not exist.

Usage: check.py --astropipe BIN --kubernetes-validate PATH --checkov PATH
Prints JSON: objects per overlay and the checks run.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}")
    return r


def containers(doc):
    spec = doc.get("spec", {})
    for path in (("template",), ("jobTemplate", "spec", "template")):
        t = spec
        for k in path:
            t = (t or {}).get(k)
        if t:
            yield from t.get("spec", {}).get("containers", [])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--astropipe", required=True)
    ap.add_argument("--kubernetes-validate", required=True)
    ap.add_argument("--checkov", required=True)
    a = ap.parse_args()
    out = {}
    tmp = tempfile.mkdtemp(prefix="astropipe-k8s-")
    overlays = sorted(os.listdir(os.path.join(HERE, "overlays")))
    for name in overlays:
        rendered = run(["kubectl", "kustomize", os.path.join(HERE, "overlays", name)]).stdout
        path = os.path.join(tmp, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(rendered)
        docs = [d for d in yaml.safe_load_all(rendered) if d]
        run([a.kubernetes_validate, "--strict", "--quiet", path])
        ck = run([a.checkov, "-f", path, "--framework", "kubernetes", "--compact", "--quiet", "--skip-download",
                  "--output", "json"])
        report = json.loads(ck.stdout) if ck.stdout.strip() else {}
        summary = report.get("summary", {}) if isinstance(report, dict) else {}
        if summary.get("failed", 0):
            sys.exit(f"checkov: {summary}")
        cmds = 0
        for d in docs:
            for c in containers(d):
                args = c.get("args", [])
                run([a.astropipe, *args, "--help"], env=dict(os.environ, JOB_COMPLETION_INDEX="0",
                                                              ASTROPIPE_SHARD_COUNT="4"))
                cmds += 1
        out[name] = {"objects": len(docs), "kinds": sorted({d["kind"] for d in docs}),
                     "checkov": summary, "command_lines_checked": cmds}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
