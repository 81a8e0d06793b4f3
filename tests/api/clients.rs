//! jobgraph from its clients' side: `tests/clients/run.sh` starts the real
//! binary and runs the graphql-http audit (every MUST and SHOULD), Apollo
//! Client 4, graphql-ws, graphql-sse, introspection against
//! `schema.graphql`, and GraphiQL in headless Chromium against it. Needs
//! Node.js with npm and Debian's `chromium` (`.ci/run` installs them).

use std::process::Command;

#[test]
fn frontends_and_tools_work_against_the_real_server() {
    let output = Command::new("tests/clients/run.sh")
        .env("JOBGRAPH_BIN", env!("CARGO_BIN_EXE_jobgraph"))
        .output()
        .expect("run tests/clients/run.sh (needs bash, node and npm)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "client tests failed:\n{stdout}\n{stderr}"
    );
}
