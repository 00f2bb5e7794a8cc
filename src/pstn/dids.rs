//! DIDs (direct inward dialling numbers): which phone number rings which user. Kept in
//! `<data_dir>/dids.yaml`, managed with `p2psip did add|del|list`; a running node rereads
//! the file on SIGHUP and stores each DID in the overlay as an AOR-to-AOR SIP-REGISTRATION
//! (`sip_registration_uri`) at H(`+494012345@domain`), so that any node can route it.

use crate::config::Loaded;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Name of the DID file inside the data directory.
pub const DIDS_FILE: &str = "dids.yaml";

/// One DID.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DidEntry {
    /// The number in E.164 (`+494012345`).
    pub number: String,
    /// The user it rings (`1001`, the AOR user part in our domain).
    pub user: String,
}

/// `data/dids.yaml`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DidsFile {
    /// The DIDs.
    #[serde(default)]
    pub dids: Vec<DidEntry>,
}

/// Path of the DID file of a configuration.
pub fn dids_path(loaded: &Loaded) -> PathBuf {
    loaded.data_dir().join(DIDS_FILE)
}

/// Whether `n` is an E.164 number: `+` and 2 to 15 digits.
pub fn is_e164(n: &str) -> bool {
    n.strip_prefix('+')
        .is_some_and(|d| (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Reads the DID file; a missing file is an empty list.
pub fn read_dids(path: &Path) -> Result<DidsFile, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DidsFile::default()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(DidsFile::default());
    }
    let file: DidsFile =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for (i, d) in file.dids.iter().enumerate() {
        if !is_e164(&d.number) {
            return Err(format!(
                "{}: dids[{i}].number: expected E.164 such as \"+494012345\"; found {:?}",
                path.display(),
                d.number
            ));
        }
    }
    Ok(file)
}

fn write_dids(path: &Path, file: &DidsFile) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut text = serde_saphyr::to_string(file).map_err(|e| e.to_string())?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, format!("# Managed by `p2psip did`.\n{text}"))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `p2psip did ...`.
#[derive(Debug, clap::Subcommand)]
pub enum DidCommand {
    /// Map a phone number (DID) to a user: inbound calls to it ring that user.
    Add {
        /// The number, E.164 (`+494012345`) or as the dial plan normalises it (`04012345`).
        number: String,
        /// The user (`1001`) or AOR (`1001@p2psip.local`).
        user: String,
    },
    /// Remove a DID.
    Del {
        /// The number.
        number: String,
    },
    /// List the DIDs.
    List,
}

/// Runs a DID command against the configuration's data directory.
pub fn run(loaded: &Loaded, cmd: DidCommand) -> ExitCode {
    match run_inner(loaded, cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn normalise(loaded: &Loaded, number: &str) -> Result<String, String> {
    let plan = super::dialplan::DialPlan::new(loaded.config.dialplan.clone(), Vec::new());
    plan.normalize(number)
        .filter(|n| is_e164(n))
        .ok_or_else(|| {
            format!("{number:?} is not a telephone number the dial plan can put in E.164 form")
        })
}

fn run_inner(loaded: &Loaded, cmd: DidCommand) -> Result<(), String> {
    let path = dids_path(loaded);
    let domain = &loaded.config.sip.domain;
    let mut file = read_dids(&path)?;
    let hint = "a running node picks the change up on SIGHUP";
    match cmd {
        DidCommand::Add { number, user } => {
            let number = normalise(loaded, &number)?;
            let user = user
                .strip_prefix("sip:")
                .unwrap_or(&user)
                .split('@')
                .next()
                .unwrap_or_default()
                .to_owned();
            if user.is_empty() || !user.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!("expected a user name such as 1001; found {user:?}"));
            }
            file.dids.retain(|d| d.number != number);
            file.dids.push(DidEntry {
                number: number.clone(),
                user: user.clone(),
            });
            write_dids(&path, &file)?;
            println!(
                "{number} now rings {user}@{domain} (in {}; {hint})",
                path.display()
            );
        }
        DidCommand::Del { number } => {
            let number = normalise(loaded, &number)?;
            let before = file.dids.len();
            file.dids.retain(|d| d.number != number);
            if file.dids.len() == before {
                return Err(format!("{number} is not in {}", path.display()));
            }
            write_dids(&path, &file)?;
            println!("removed {number} ({hint})");
        }
        DidCommand::List => {
            for d in &file.dids {
                println!("{}\t{}@{domain}", d.number, d.user);
            }
            if file.dids.is_empty() {
                println!("no DIDs in {}", path.display());
            }
        }
    }
    Ok(())
}
