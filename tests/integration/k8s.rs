//! The Kubernetes manifests, checked as CI does: every overlay renders with kustomize, passes
//! `kubernetes-validate --strict` and checkov, and every container's command line parses with
//! this very binary (k8s/check.py).

use super::helpers::external;
use std::path::Path;

#[test]
fn every_overlay_renders_validates_and_runs_real_commands() {
    if let Ok(why) = std::env::var("ASTROPIPE_TEST_K8S_SKIP") {
        super::helpers::skipped(&why);
        return;
    }
    let Some(venv) = external("ASTROPIPE_TEST_K8S_VENV") else {
        return;
    };
    let venv = Path::new(&venv);
    let root_buf = super::helpers::repo_root();
    let root = root_buf.as_path();
    let out = std::process::Command::new(venv.join("bin/python"))
        .arg(root.join("k8s/check.py"))
        .args(["--astropipe", env!("CARGO_BIN_EXE_astropipe")])
        .arg("--kubernetes-validate")
        .arg(venv.join("bin/kubernetes-validate"))
        .arg("--checkov")
        .arg(venv.join("bin/checkov"))
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "k8s/check.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for overlay in ["dev", "staging", "prod"] {
        let o = &v[overlay];
        assert!(o["objects"].as_u64().unwrap() >= 25, "{v}");
        assert_eq!(o["checkov"]["failed"], 0, "{v}");
        assert!(o["checkov"]["passed"].as_u64().unwrap() > 100, "{v}");
        // worker, serve, reprocess Job, two CronJobs.
        assert_eq!(o["command_lines_checked"], 5, "{v}");
        for kind in [
            "Deployment",
            "HorizontalPodAutoscaler",
            "NetworkPolicy",
            "CronJob",
            "Job",
            "PodDisruptionBudget",
            "ServiceMonitor",
            "PrometheusRule",
        ] {
            assert!(
                o["kinds"].as_array().unwrap().iter().any(|k| k == kind),
                "{overlay} lacks {kind}: {v}"
            );
        }
    }
}
