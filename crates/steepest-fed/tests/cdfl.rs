//! CDFL (client-driven FL, arXiv:2405.15407; research notes §11): exact
//! checks of the protocol, bad configurations, determinism, and the notes'
//! claim (d) on the logistic-regression workload with 4 rotated clusters.
//! The paper's body was unreachable: the estimator under test is steepest's
//! default ([`DistanceSoftmax`]), not the paper's rule.

use steepest_fed::algorithms::cdfl::*;
use steepest_fed::logreg::{LogReg, LogRegSpec};
use steepest_fed::partition::ClusterMixture;
use steepest_fed::strategy::{ClientConfig, Model};
use steepest_fed::Error;

fn workload(clients: usize, seed: u64) -> LogReg {
    LogReg::new(
        LogRegSpec {
            clients,
            samples_per_client: 100,
            test: 1000,
            ..LogRegSpec::default()
        },
        seed,
    )
    .unwrap()
}

fn config(clients: usize, clusters: usize, horizon: f64, seed: u64, mixture: ClusterMixture) -> CdflConfig {
    CdflConfig {
        clusters,
        server_lr: 1.0,
        init_noise: 0.01,
        horizon,
        seed,
        client: ClientConfig {
            local_steps: 20,
            batch: 16,
            ..ClientConfig::default()
        },
        arrivals: Arrivals::uniform(clients, 1.0),
        mixture,
    }
}

fn shifting(concentration: f64) -> ClusterMixture {
    ClusterMixture {
        clusters: 4,
        shift_rate: 0.02,
        concentration,
    }
}

fn est() -> Box<dyn ClusterEstimator> {
    Box::new(DistanceSoftmax::default())
}

/// With one cluster the estimate is `[1]`, the update `θ + η·1·Δ` and the
/// customised model `1·θ`: asynchronous FedAvg on the same arrivals, bit for bit.
#[test]
fn one_cluster_is_async_fedavg_bit_for_bit() {
    let w = workload(8, 3);
    let mut cfg = config(8, 1, 12.0, 3, shifting(0.5));
    cfg.server_lr = 0.7;
    let a = run_cdfl(&w, &cfg, est()).unwrap();
    let b = run_fedavg(&w, &cfg).unwrap();
    assert!(a.uploads > 50);
    assert_eq!(a.model_hash, b.model_hash);
    assert_eq!(a.final_client_accuracy.to_bits(), b.final_client_accuracy.to_bits());
    assert_eq!(a.mean_client_accuracy.to_bits(), b.mean_client_accuracy.to_bits());
    assert!(a.estimates.iter().filter(|e| !e.is_empty()).all(|e| e == &vec![1.0]));
}

/// An estimator that always answers the same vector.
struct Fixed(Vec<f64>);
impl ClusterEstimator for Fixed {
    fn name(&self) -> String {
        "fixed".into()
    }
    fn estimate(&self, _: &EstimateInput<'_>) -> steepest_fed::Result<Vec<f64>> {
        Ok(self.0.clone())
    }
}

fn tiny(v: &[f64]) -> Model {
    let mut m = Model::new();
    m.push("w", &[v.len()], v.to_vec()).unwrap();
    m
}

/// One upload on dyadic numbers: `θ_k ← θ_k + η α_k (w − w_sent)`,
/// customised `Σ α_k θ_k`, remembered as sent; all exact in f64.
#[test]
fn upload_matches_hand_computed_update() {
    let init = tiny(&[0.0, 0.0]);
    let mut s = CdflServer::new(&init, 2, 2, 0.5, 0.0, 1, Box::new(Fixed(vec![0.25, 0.75]))).unwrap();
    // Cluster models θ_0 = (1, 2), θ_1 = (-1, 4); client 0 was last sent (0.5, 0.5).
    let state = r#"{"clusters":[[1.0,2.0],[-1.0,4.0]],"sent":[[0.5,0.5],[0.0,0.0]],"estimates":[null,null]}"#;
    s.load_state_bytes(state.as_bytes()).unwrap();
    let (custom, alpha) = s.upload(0, &tiny(&[2.5, -1.5])).unwrap();
    // Δ = (2, -2); θ_0 += 0.125 Δ = (1.25, 1.75); θ_1 += 0.375 Δ = (-0.25, 3.25).
    let cl = s.clusters().unwrap();
    assert_eq!(cl[0].get("w").unwrap().data, vec![1.25, 1.75]);
    assert_eq!(cl[1].get("w").unwrap().data, vec![-0.25, 3.25]);
    // 0.25 θ_0 + 0.75 θ_1 = (0.125, 2.875).
    assert_eq!(custom.get("w").unwrap().data, vec![0.125, 2.875]);
    assert_eq!(alpha, vec![0.25, 0.75]);
    assert_eq!(s.sent_to(0).unwrap().get("w").unwrap().data, vec![0.125, 2.875]);
    assert_eq!(s.estimate_of(0), Some(&[0.25, 0.75][..]));
    assert_eq!(s.estimate_of(1), None);
    // State round trip: a restored server answers the next upload identically.
    let bytes = s.state_bytes().unwrap();
    let mut r = CdflServer::new(&init, 2, 2, 0.5, 0.0, 1, Box::new(Fixed(vec![0.25, 0.75]))).unwrap();
    r.load_state_bytes(&bytes).unwrap();
    let up = tiny(&[0.5, 1.0]);
    assert_eq!(s.upload(1, &up).unwrap(), r.upload(1, &up).unwrap());
    assert!(r.load_state_bytes(b"{}").is_err());
}

/// The default estimator returns a probability vector; equal cluster models
/// give the uniform vector; an upload sitting on `θ_j` of equidistant
/// clusters gets `1/(1 + (K−1) e^{−β})` (with lookahead 1).
#[test]
fn estimator_returns_a_probability_vector() {
    let mut r = steepest_fed::rng::Rng::stream(5, steepest_fed::rng::Purpose::Other, 1, 0);
    for k in 1..6 {
        for _ in 0..20 {
            let clusters: Vec<Vec<f64>> = (0..k).map(|_| (0..7).map(|_| r.normal()).collect()).collect();
            let up: Vec<f64> = (0..7).map(|_| 3.0 * r.normal()).collect();
            let sent: Vec<f64> = (0..7).map(|_| r.normal()).collect();
            let a = DistanceSoftmax::default()
                .estimate(&EstimateInput {
                    client: 0,
                    upload: &up,
                    sent: &sent,
                    clusters: &clusters,
                    previous: None,
                })
                .unwrap();
            assert_eq!(a.len(), k);
            assert!(a.iter().all(|x| x.is_finite() && *x >= 0.0));
            assert!((a.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }
    let same = vec![vec![1.0, 2.0]; 3];
    let inp = EstimateInput {
        client: 0,
        upload: &[0.0, 0.0],
        sent: &[0.0, 0.0],
        clusters: &same,
        previous: None,
    };
    assert_eq!(DistanceSoftmax::default().estimate(&inp).unwrap(), vec![1.0 / 3.0; 3]);
    // Equidistant: the corners of a simplex (unit vectors), upload on e_1.
    let corners: Vec<Vec<f64>> = (0..4)
        .map(|i| (0..4).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    let e = DistanceSoftmax {
        beta: 5.0,
        lookahead: 1.0,
    };
    let a = e
        .estimate(&EstimateInput {
            client: 0,
            upload: &corners[1],
            sent: &[0.0; 4],
            clusters: &corners,
            previous: None,
        })
        .unwrap();
    let want = 1.0 / (1.0 + 3.0 * (-5.0f64).exp());
    assert!((a[1] - want).abs() < 1e-12, "{a:?}");
}

/// Pure, static clients (data exactly one cluster, never shifting), 40
/// clients, 4 clusters, ~40 uploads each. Per client with ≥ 3 uploads:
/// the largest weight of its last estimate, and whether that model serves
/// its true cluster (cluster models are unlabelled, so "weight on it" means:
/// on a model whose test accuracy on that cluster is within 0.05 of the best
/// cluster model's; 0.05 is ~3.5 standard errors of an accuracy near 0.7 on
/// 1,000 test samples).
/// Per client (id, largest weight, serves its cluster); accuracy[true][model].
type PureRun = (Vec<(usize, f64, bool)>, Vec<Vec<f64>>);

fn pure_run() -> PureRun {
    let w = workload(40, 1);
    let pure = ClusterMixture {
        clusters: 4,
        shift_rate: 0.0,
        concentration: 0.0,
    };
    let cfg = config(40, 4, 40.0, 1, pure);
    let rep = run_cdfl(&w, &cfg, est()).unwrap();
    let acc: Vec<Vec<f64>> = (0..4)
        .map(|truth| {
            rep.models
                .iter()
                .map(|m| w.evaluate_rotated(m, truth).accuracy)
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    for c in 0..40 {
        if rep.per_client[c] < 3 {
            continue;
        }
        let truth = rep.last_mixture[c].iter().position(|&p| p == 1.0).unwrap();
        let e = &rep.estimates[c];
        let arg = (0..4).fold(0, |a, k| if e[k] > e[a] { k } else { a });
        let best = acc[truth].iter().copied().fold(0.0, f64::max);
        out.push((c, e[arg], acc[truth][arg] >= best - 0.05));
    }
    assert!(out.len() >= 35);
    (out, acc)
}

/// After ≥ 3 uploads, a pure client's estimate puts ≥ 0.9 on one model.
#[test]
fn pure_clients_get_at_least_0_9_on_one_model() {
    let (out, _) = pure_run();
    let low: Vec<_> = out.iter().filter(|o| o.1 < 0.9).collect();
    assert!(low.is_empty(), "weights below 0.9: {low:?}");
}

/// ... and that model is one that serves its true cluster. Not reproduced
/// with the default estimator on seed 1: the online soft clustering settled
/// in a split/merge optimum. Accuracy [true cluster][model]: cluster 0 → model
/// 1 (0.791), 1 → model 2 (0.804), 2 → model 3 only (0.413: no model of its
/// own), 3 → model 0 (0.777) *and* model 3 (0.688); 10 of the 40 clients
/// (cluster 3) sit at ≥ 0.98 on the merged model 3.
#[test]
#[ignore = "not reproduced: clusters 2 and 3 merged in one model (acc 0.413/0.688); 10/40 cluster-3 clients at >= 0.98 on it while model 0 scores 0.777"]
fn pure_clients_weight_the_model_of_their_cluster() {
    let (out, acc) = pure_run();
    let wrong: Vec<_> = out.iter().filter(|o| !o.2).collect();
    assert!(
        wrong.is_empty(),
        "clients on a model that does not serve their cluster: {wrong:?}; {acc:?}"
    );
}

#[test]
fn bad_configurations_are_errors() {
    let w = workload(4, 1);
    let ok = config(4, 2, 5.0, 1, shifting(0.0));
    let msg = |r: steepest_fed::Result<CdflReport>| match r {
        Err(Error::Config(m)) => m,
        other => panic!("expected a config error, got {other:?}"),
    };
    let mut c = ok.clone();
    c.clusters = 0;
    assert!(msg(run_cdfl(&w, &c, est())).contains("clusters"));
    let mut c = ok.clone();
    c.horizon = f64::NAN;
    assert!(msg(run_fedavg(&w, &c)).contains("horizon"));
    let mut c = ok.clone();
    c.arrivals = Arrivals::uniform(3, 1.0);
    assert!(msg(run_ifca(&w, &c)).contains("rates"));
    let mut c = ok.clone();
    c.arrivals = Arrivals::uniform(4, -1.0);
    assert!(msg(run_cdfl(&w, &c, est())).contains("rates"));
    let mut c = ok.clone();
    c.server_lr = 0.0;
    assert!(msg(run_cdfl(&w, &c, est())).contains("server_lr"));
    assert!(msg(run_fedavg(&w, &c)).contains("server_lr"));
    let mut c = ok.clone();
    c.init_noise = -1.0;
    assert!(msg(run_cdfl(&w, &c, est())).contains("init_noise"));
    let mut c = ok.clone();
    c.client.local_steps = 0;
    assert!(msg(run_cdfl(&w, &c, est())).contains("local_steps"));
    let mut c = ok.clone();
    c.mixture.shift_rate = f64::INFINITY;
    assert!(msg(run_cdfl(&w, &c, est())).contains("shift_rate"));
    let mut c = ok.clone();
    c.mixture.concentration = -0.5;
    assert!(msg(run_cdfl(&w, &c, est())).contains("concentration"));
    let bad = DistanceSoftmax {
        beta: 0.0,
        lookahead: 1.0,
    };
    assert!(msg(run_cdfl(&w, &ok, Box::new(bad))).contains("beta"));
    // An estimator that breaks the contract, and bad uploads, are rejected.
    let r = run_cdfl(&w, &ok, Box::new(Fixed(vec![0.7, 0.7])));
    assert!(matches!(r, Err(Error::Rejected(m)) if m.contains("probability")));
    let mut s = CdflServer::new(&tiny(&[0.0]), 2, 1, 1.0, 0.1, 1, est()).unwrap();
    assert!(matches!(s.upload(0, &tiny(&[0.0, 1.0])), Err(Error::Rejected(_))));
    assert!(matches!(s.upload(0, &tiny(&[f64::NAN])), Err(Error::Rejected(_))));
    assert!(matches!(s.upload(1, &tiny(&[0.0])), Err(Error::Config(_))));
}

/// Same seed, same run (whatever rayon's pool size: the server is
/// sequential); another seed, another run.
#[test]
fn deterministic_for_a_seed() {
    let w = workload(10, 2);
    let cfg = config(10, 3, 10.0, 2, shifting(0.3));
    let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
    let a = pool(1).install(|| run_cdfl(&w, &cfg, est()).unwrap());
    let b = pool(4).install(|| run_cdfl(&w, &cfg, est()).unwrap());
    assert_eq!(a.model_hash, b.model_hash);
    assert_eq!(a.estimates, b.estimates);
    assert_eq!(a.final_client_accuracy.to_bits(), b.final_client_accuracy.to_bits());
    let mut other = cfg.clone();
    other.seed = 3;
    assert_ne!(run_cdfl(&w, &other, est()).unwrap().model_hash, a.model_hash);
    assert_eq!(
        run_ifca(&w, &cfg).unwrap().model_hash,
        run_ifca(&w, &cfg).unwrap().model_hash
    );
}

/// Notes §11 (d), on logistic regression (20 features, 10 classes) instead of
/// rotated MNIST: 4 clusters (feature permutations), 40 clients arriving at
/// Poisson rate 1 up to time 40 (~1,600 uploads), each client's data a
/// Dirichlet(0.3) mixture of clusters redrawn at Poisson rate 0.02.
/// Claimed: CDFL's mean client accuracy ≥ FedAvg's; 1 model down per upload
/// against IFCA's K. Asserted on 2 seeds, with no slack on the accuracy
/// inequality: the measured gap is far larger than seed noise (final / mean
/// client accuracy — seed 1: CDFL 0.490/0.512, FedAvg 0.339/0.347, IFCA
/// 0.526/0.536; seed 2: CDFL 0.435/0.450, FedAvg 0.312/0.304, IFCA
/// 0.467/0.474, each on 40 clients × 1,000 test samples). IFCA, which
/// downloads K = 4 models, stays ahead by ~0.03. Bytes are exact counts.
#[test]
fn claim_cdfl_beats_fedavg_with_one_model_down() {
    for seed in [1, 2] {
        let w = workload(40, seed);
        let cfg = config(40, 4, 40.0, seed, shifting(0.3));
        let cd = run_cdfl(&w, &cfg, est()).unwrap();
        let fa = run_fedavg(&w, &cfg).unwrap();
        let ifca = run_ifca(&w, &cfg).unwrap();
        eprintln!(
            "seed {seed}: final/mean client accuracy cdfl {:.4}/{:.4} fedavg {:.4}/{:.4} ifca {:.4}/{:.4}; \
             downlink models cdfl {} ifca {} (uploads {})",
            cd.final_client_accuracy,
            cd.mean_client_accuracy,
            fa.final_client_accuracy,
            fa.mean_client_accuracy,
            ifca.final_client_accuracy,
            ifca.mean_client_accuracy,
            cd.downlink_models,
            ifca.downlink_models,
            cd.uploads
        );
        assert!(cd.final_client_accuracy >= fa.final_client_accuracy);
        assert!(cd.mean_client_accuracy >= fa.mean_client_accuracy);
        assert_eq!(cd.uploads, ifca.uploads);
        assert_eq!(cd.downlink_models, cd.uploads);
        assert_eq!(ifca.downlink_models, 4 * ifca.uploads);
        assert_eq!(cd.downlink_bytes * 4, ifca.downlink_bytes);
        assert_eq!(cd.uplink_bytes, ifca.uplink_bytes);
        assert_eq!(cd.downlink_bytes, cd.uploads * 210 * 8);
    }
}

/// `steepest fed cdfl` prints a JSON summary per method; bad options are errors.
#[test]
fn cli_prints_a_json_summary() {
    let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    let out = steepest_fed::cli::run(&args("cdfl --method all --clients 6 --horizon 4 --seed 1")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let runs = v.as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0]["method"], "cdfl");
    assert_eq!(
        runs[2]["downlink_models"].as_u64().unwrap(),
        4 * runs[2]["uploads"].as_u64().unwrap()
    );
    assert!(steepest_fed::cli::run(&args("cdfl --method nope --clients 6 --horizon 4")).is_err());
    assert!(steepest_fed::cli::run(&args("cdfl --clusters 0 --clients 6")).is_err());
    assert!(steepest_fed::cli::run(&args("cdfl --horizon -1 --clients 6")).is_err());
}
