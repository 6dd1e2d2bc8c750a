//! `adam-loadtest`: drives N concurrent sessions against a running Adam (see the load-tester issue).

fn main() {
    eprintln!("adam-loadtest: not implemented yet; see docs/PERFORMANCE.md");
    std::process::exit(2);
}
