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

/// Serves `strat` to 8 CLI clients (which pass `client_strat` for the
/// strategy's client side) and compares the final model's hash with `fed sim`.
fn serve_and_compare(strat: &str, client_strat: &str, port_offset: u16) {
    let dir = std::env::temp_dir().join(format!("steepest-fed-cli-net-{}-{port_offset}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toks = dir.join("tokens.txt");
    run(&args(&format!("tokens --clients 8 --out {}", toks.display()))).unwrap();
    let text = std::fs::read_to_string(&toks).unwrap();
    let port = 20_000 + (std::process::id() % 20_000) as u16 + port_offset;
    let common = "--clients 8 --samples-per-client 30 --partition dirichlet:0.5 --seed 4";
    let serve = {
        let a = args(&format!(
            "serve --port {port} --tokens {} {common} {strat} --round-timeout-ms 20000",
            toks.display()
        ));
        std::thread::spawn(move || run(&a))
    };
    let clients: Vec<_> = text
        .lines()
        .map(|l| {
            let (id, tok) = l.split_once(' ').unwrap();
            let a = args(&format!(
                "client --server 127.0.0.1:{port} --id {id} --token {tok} {common} {client_strat}"
            ));
            std::thread::spawn(move || run(&a))
        })
        .collect();
    let served = serve.join().unwrap().unwrap();
    for c in clients {
        c.join().unwrap().unwrap();
    }
    let sim = run(&args(&format!("sim {common} {strat} --eval-every 0"))).unwrap();
    let hash = |s: &str| s.rsplit("model ").next().unwrap().trim().to_string();
    assert_eq!(hash(&served), hash(&sim), "{strat}\nserved:\n{served}\nsim:\n{sim}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn serve_and_clients_over_the_cli_match_sim() {
    serve_and_compare(
        "--strategy fedavgm --opt momentum=0.5 --participation bernoulli:0.7 --fraction 0.5 --rounds 4",
        "",
        0,
    );
}

/// Strategies with their own client side (FedSpeed's correction state,
/// FedHyper-FULL's local rate, MCI's masks) give the simulator's model over
/// the network too, when the clients are told the strategy.
#[test]
fn strategies_with_a_client_side_match_sim_over_the_network() {
    for (i, s) in [
        "--strategy fedspeed --opt clients=8",
        "--strategy fedhyper-full",
        "--strategy mci --opt keep=0.5",
    ]
    .iter()
    .enumerate()
    {
        serve_and_compare(
            &format!("{s} --participation all --fraction 0.5 --rounds 3"),
            s,
            100 + i as u16,
        );
    }
}
