//! `adam-loadtest`: drives N concurrent sessions against a running Adam (see the load-tester issue).

fn main() {
    eprintln!("adam-loadtest: not implemented yet (see the load-tester issue)");
    std::process::exit(2);
}
