//! `snapferry completions SHELL` and `snapferry man`: shell completion scripts and a roff man
//! page generated from the clap definition itself, so they can never disagree with the
//! commands and flags the binary really takes. Both print to stdout:
//! `snapferry completions bash > /etc/bash_completion.d/snapferry`, `snapferry man > snapferry.1`.
//! Hidden flags (test and deprecated ones) are left out of completions, as they are of `--help`;
//! `snapferry man --out-dir DIR` writes the page of every command the main page refers to.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;
use miette::{IntoDiagnostic, WrapErr};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Print the page of this command (`snapferry man apply`) instead of the main page.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
    /// Write every page (`snapferry.1` and one `snapferry-<command>.1` per command, the pages
    /// the main page refers to) into this directory instead of printing one.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub out_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    let mut command = without_hidden(&super::Cli::command());
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "snapferry", &mut out);
    std::io::stdout().write_all(&out).into_diagnostic()?;
    Ok(ExitCode::SUCCESS)
}

/// The command tree without its hidden arguments and commands: the completion generators list
/// every argument, hidden or not, and a hidden flag is one users should not be offered.
fn without_hidden(command: &clap::Command) -> clap::Command {
    let mut out = clap::Command::new(command.get_name().to_owned());
    if let Some(version) = command.get_version() {
        out = out.version(version.to_owned());
    }
    if let Some(about) = command.get_about() {
        out = out.about(about.clone());
    }
    out.args(
        command
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .cloned(),
    )
    .subcommands(
        command
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
            .map(without_hidden),
    )
}

pub fn man(args: ManArgs) -> miette::Result<ExitCode> {
    let mut root = super::Cli::command();
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot create {}", dir.display()))?;
        clap_mangen::generate_to(root, dir)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot write the man pages into {}", dir.display()))?;
        let mut pages: Vec<String> = std::fs::read_dir(dir)
            .into_diagnostic()?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("snapferry") && n.ends_with(".1"))
            .collect();
        pages.sort();
        println!("wrote {} man pages into {}:", pages.len(), dir.display());
        for page in pages {
            println!("  {page}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let page = match &args.command {
        None => root,
        Some(name) => {
            root = root.disable_help_subcommand(true);
            root.build();
            let names: Vec<&str> = root
                .get_subcommands()
                .filter(|c| !c.is_hide_set())
                .map(|c| c.get_name())
                .collect();
            match root.find_subcommand(name) {
                Some(sub) if !sub.is_hide_set() => sub.clone(),
                _ => {
                    return Err(miette::miette!(
                        help = format!("the commands are: {}", names.join(", ")),
                        "snapferry has no command {name:?}"
                    ));
                }
            }
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
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
            &mut without_hidden(&super::super::Cli::command()),
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
