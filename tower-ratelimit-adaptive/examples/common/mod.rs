//! What the examples share: reading `--name value` flags.

/// The value after the flag `name` on the command line, if given.
pub fn flag(name: &str) -> Option<String> {
    let mut args = std::env::args().skip_while(|a| a != name);
    args.next()?;
    args.next()
}
