//! `sockdemo completions SHELL` and `sockdemo man`: what a package or a user installs beside
//! the binary, generated from the very [`Cli`] definition that parses the command line, so
//! that they can never disagree with `--help`.
//!
//! The man page is one page for the whole tool, as curl's is: the global options and the
//! list of subcommands first, then a section for each subcommand with its synopsis, its
//! options and its examples. clap_mangen renders the pieces; the subcommands' headings are
//! turned into subsections of their own section here. Examples and tables are kept as
//! written (no-fill), not run together into a paragraph.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

use super::Cli;

/// The name users type.
const BIN: &str = "sockdemo";

/// Writes the completion script for `shell` to `out`. The script is made in memory first:
/// clap_complete panics on a failed write, and a reader that went away (`| head`) must end
/// the program quietly, not with a panic.
pub fn completions(shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut script);
    out.write_all(&script)
}

/// Writes the manual page, in roff, to `out`.
pub fn man(out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let page = Man::new(cmd.clone());
    page.render_title(out)?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;
    page.render_options_section(out)?;
    let subs: Vec<&clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    out.write_all(subcommand_list(&subs).as_bytes())?;
    for sub in subs {
        subcommand_section(sub, out)?;
    }
    page.render_version_section(out)
}

/// The list of subcommands, each named as it is typed (`sockdemo fetch`), with its purpose:
/// they are described further down this same page.
fn subcommand_list(subs: &[&clap::Command]) -> String {
    let mut roff = Roff::default();
    roff.control("SH", ["SUBCOMMANDS"]);
    for sub in subs {
        roff.control("TP", []);
        roff.text([bold(typed_name(sub))]);
        if let Some(about) = sub.get_about() {
            roff.text([roman(about.to_string())]);
        }
    }
    roff.to_roff()
}

/// `sockdemo fetch`, as a user types it.
fn typed_name(sub: &clap::Command) -> String {
    sub.get_bin_name()
        .map_or_else(|| format!("{BIN} {}", sub.get_name()), str::to_string)
}

/// One subcommand's section: its name and purpose, synopsis, options and after-help.
fn subcommand_section(sub: &clap::Command, out: &mut dyn Write) -> io::Result<()> {
    let mut head = Roff::default();
    head.control("SH", [typed_name(sub).to_uppercase().as_str()]);
    if let Some(about) = sub.get_about() {
        head.text([roman(about.to_string())]);
    }
    out.write_all(head.to_roff().as_bytes())?;
    let page = Man::new(sub.clone());
    let mut parts = Vec::new();
    page.render_synopsis_section(&mut parts)?;
    page.render_options_section(&mut parts)?;
    out.write_all(&as_subsections(&parts))?;
    if let Some(after) = sub.get_after_help() {
        out.write_all(verbatim("NOTES", &after.to_string()).as_bytes())?;
    }
    Ok(())
}

/// `roff` with its sections (`.SH`) made subsections (`.SS`).
fn as_subsections(roff: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(roff.len());
    for line in roff.split_inclusive(|&b| b == b'\n') {
        match line.strip_prefix(b".SH ") {
            Some(rest) => {
                out.extend_from_slice(b".SS ");
                out.extend_from_slice(rest);
            }
            None => out.extend_from_slice(line),
        }
    }
    out
}

/// A subsection whose lines are kept as they are (tables, examples).
fn verbatim(title: &str, text: &str) -> String {
    let mut roff = Roff::default();
    roff.control("SS", [title]);
    roff.control("nf", []);
    for line in text.lines() {
        roff.text([roman(line)]);
    }
    roff.control("fi", []);
    roff.to_roff()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_that_knows_every_subcommand() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            let mut script = Vec::new();
            completions(shell, &mut script).unwrap();
            let script = String::from_utf8(script).unwrap();
            for sub in ["fetch", "serve", "client", "bench", "demo", "completions"] {
                assert!(script.contains(sub), "{shell}: no {sub}");
            }
            assert!(script.contains("no-progress"), "{shell}");
        }
    }

    #[test]
    fn the_man_page_has_a_section_for_each_subcommand() {
        let mut page = Vec::new();
        man(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains("\n.TH sockdemo 1 "), "{page}");
        assert!(
            !page.contains("HELP"),
            "the help subcommand is not one to document"
        );
        for section in ["SOCKDEMO FETCH", "SOCKDEMO SERVE", "SOCKDEMO BENCH"] {
            assert!(page.contains(&format!(".SH \"{section}\"")), "{section}");
        }
        assert!(
            page.contains("\\-\\-max\\-redirs"),
            "fetch's options are listed"
        );
    }
}
