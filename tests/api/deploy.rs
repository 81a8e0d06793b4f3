//! The deployment files say only what the service understands: every
//! environment variable that `deploy/k8s/` and `docker-compose.yml` set is
//! one the service reads (a misspelt name would be silently ignored).

use std::{cell::RefCell, collections::BTreeSet};

/// Every variable the configuration asks for, from the service itself.
fn variables_read() -> BTreeSet<String> {
    let asked = RefCell::new(BTreeSet::new());
    // Some settings are read only when another one is set: set those.
    let _ = jobgraph::config::Config::from_lookup(|name| {
        asked.borrow_mut().insert(name.to_owned());
        match name {
            "OTEL_TRACES_SAMPLER" => Some("parentbased_traceidratio".to_owned()),
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:4318".to_owned()),
            _ => None,
        }
    });
    let mut names = asked.into_inner();
    // Read by the log filter (tracing-subscriber), not by `Config`.
    names.insert("RUST_LOG".to_owned());
    names
}

/// `- name: X` entries of `env:` lists and the keys of a ConfigMap's `data:`.
fn variables_set(yaml: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_data = false;
    let is_var = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    };
    for line in yaml.lines() {
        let trimmed = line.trim_start();
        if let Some(name) = trimmed.strip_prefix("- name: ")
            && is_var(name.trim())
        {
            names.push(name.trim().to_owned());
        }
        if line == "data:" {
            in_data = true;
            continue;
        }
        if in_data {
            if !line.starts_with("  ") {
                in_data = false;
            } else if let Some((key, _)) = trimmed.split_once(':')
                && !trimmed.starts_with('#')
                && is_var(key)
            {
                names.push(key.to_owned());
            }
        }
    }
    names
}

#[test]
fn every_variable_the_manifests_set_is_one_the_service_reads() {
    let read = variables_read();
    assert!(read.contains("DATABASE_URL") && read.contains("WS_IDLE_TIMEOUT_MS"));
    let mut checked = 0;
    for entry in std::fs::read_dir("deploy/k8s").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            for name in variables_set(&text) {
                assert!(
                    read.contains(&name),
                    "{} sets {name}, which jobgraph does not read",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "only {checked} variables found in deploy/k8s");
}

#[test]
fn the_compose_file_sets_only_variables_the_service_reads() {
    let read = variables_read();
    let compose = std::fs::read_to_string("docker-compose.yml").unwrap();
    let mut service = String::new();
    let mut in_env = false;
    let mut checked = 0;
    for line in compose.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if indent == 2 && trimmed.ends_with(':') && !trimmed.starts_with('#') {
            service = trimmed.trim_end_matches(':').to_owned();
            in_env = false;
            continue;
        }
        if indent == 4 {
            in_env = trimmed.starts_with("environment:");
            continue;
        }
        if in_env
            && service.starts_with("jobgraph")
            && indent == 6
            && let Some((key, _)) = trimmed.split_once(':')
            && !trimmed.starts_with('#')
            // A YAML merge of the first replica's settings.
            && key != "<<"
        {
            assert!(
                read.contains(key),
                "docker-compose.yml ({service}) sets {key}, which jobgraph does not read"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 5,
        "only {checked} variables found for the jobgraph services"
    );
}
