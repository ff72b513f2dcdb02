//! The federated suite's measurements without the HTML report:
//! `cargo run --release -p steepest-fed --example fed_bench [OUT_DIR]`
//! prints the summary and writes `federated.json` (the full report with
//! charts is `steepest bench --suite federated`).

fn main() {
    let cfg = steepest_fed::bench::FedBenchConfig::default();
    match steepest_fed::bench::run(&cfg) {
        Ok(b) => {
            print!("{}", steepest_fed::bench::summary(&b));
            let dir = std::env::args().nth(1).unwrap_or_else(|| "bench-fed".into());
            match steepest_fed::bench::write_json(&b, std::path::Path::new(&dir)) {
                Ok(p) => println!("\n{} ({:.1} s)", p.display(), b.wall_seconds),
                Err(e) => eprintln!("error: {e}"),
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
