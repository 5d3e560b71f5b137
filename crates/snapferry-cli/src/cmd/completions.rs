//! `snapferry completions SHELL` and `snapferry man`: shell completion scripts and a roff man
//! page generated from the clap definition itself, so they can never disagree with the
//! commands and flags the binary really takes. Both print to stdout:
//! `snapferry completions bash > /etc/bash_completion.d/snapferry`, `snapferry man > snapferry.1`.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;
use miette::IntoDiagnostic;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    let mut command = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "snapferry", &mut out);
    std::io::stdout().write_all(&out).into_diagnostic()?;
    Ok(ExitCode::SUCCESS)
}

pub fn man(_args: ManArgs) -> miette::Result<ExitCode> {
    let mut out = Vec::new();
    clap_mangen::Man::new(super::Cli::command())
        .render(&mut out)
        .into_diagnostic()?;
    std::io::stdout().write_all(&out).into_diagnostic()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bash() -> String {
        let mut out = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut super::super::Cli::command(),
            "snapferry",
            &mut out,
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_bash_completion_knows_the_commands_and_their_flags() {
        let script = bash();
        for word in [
            "apply",
            "destroy",
            "--auto-approve",
            "--include-target-domain",
        ] {
            assert!(
                script.contains(word),
                "{word} missing from the bash completion"
            );
        }
    }

    #[test]
    fn every_shell_gets_a_script_and_the_man_page_names_the_commands() {
        use clap::ValueEnum;
        for shell in clap_complete::Shell::value_variants() {
            let mut out = Vec::new();
            clap_complete::generate(
                *shell,
                &mut super::super::Cli::command(),
                "snapferry",
                &mut out,
            );
            assert!(
                String::from_utf8(out).unwrap().contains("snapferry"),
                "{shell}"
            );
        }
        let mut page = Vec::new();
        clap_mangen::Man::new(super::super::Cli::command())
            .render(&mut page)
            .unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.starts_with(".ie"), "roff: {}", &page[..40]);
        assert!(page.contains("snapferry\\-apply"), "{page}");
    }
}
