//! `steepest fed …` as the binary forwards it (steepest_fed::cli::run).

use steepest_fed::cli::run;

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[test]
fn sim_runs_and_reports() {
    let dir = std::env::temp_dir().join(format!("steepest-fed-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("r.json");
    let out = run(&args(&format!(
        "sim --strategy trimmed-mean --opt beta=0.2 --clients 60 --participation uniform:20 \
         --partition dirichlet:1.0 --rounds 6 --eval-every 3 --attack gaussian:5 --malicious 0.1 \
         --dropout 0.1 --threads 2 --seed 3 --json {}",
        json.display()
    )))
    .unwrap();
    assert!(out.contains("final accuracy"), "{out}");
    assert!(out.contains("round    3"), "{out}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["rounds"].as_array().unwrap().len(), 6);
    // Same arguments, same model.
    let again = run(&args(
        "sim --strategy trimmed-mean --opt beta=0.2 --clients 60 --participation uniform:20 \
         --partition dirichlet:1.0 --rounds 6 --eval-every 3 --attack gaussian:5 --malicious 0.1 \
         --dropout 0.1 --threads 1 --seed 3",
    ))
    .unwrap();
    let hash = |s: &str| s.rsplit("model ").next().unwrap().trim().to_string();
    assert_eq!(hash(&out), hash(&again));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    for bad in [
        "",
        "sim --strategy nosuch",
        "sim --clients many",
        "sim --participation uniform:0",
        "sim --partition zipf",
        "sim --attack nuke:1",
        "sim --malicious 0.2",
        "sim --threads 0",
        "sim --frobnicate 1",
        "sim --opt beta",
        "sim --hyper notjson",
        "sim --rounds",
        "serve",
    ] {
        assert!(run(&args(bad)).is_err(), "`{bad}` should be an error");
    }
    assert!(run(&args("strategies")).unwrap().contains("fedau"));
}
