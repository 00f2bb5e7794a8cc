//! The `p2psip ca ...` and `p2psip enroll` subcommands.

use super::PkiError;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// `p2psip ca` subcommands.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create an overlay CA (key, self-signed certificate) and the signed overlay
    /// configuration document in DIR.
    Init {
        /// Overlay name (instance-name), e.g. pbx.example.org.
        #[arg(long)]
        overlay: String,
        /// Directory for the CA files (created if missing).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Enrollment server URL put into the configuration (https://...).
        #[arg(long, value_name = "URL")]
        enrollment_url: Option<String>,
        /// Bootstrap peer ADDR:PORT put into the configuration (repeatable).
        #[arg(long, value_name = "ADDR:PORT")]
        bootstrap: Vec<String>,
    },
    /// Serve the configuration document and enrollment over HTTPS.
    Serve {
        /// The CA directory made by `ca init`.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Address to listen on, e.g. 0.0.0.0:8443 (port 0 picks a free port).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: std::net::SocketAddr,
        /// Users file with `user:password` lines (default: DIR/users.txt).
        #[arg(long, value_name = "FILE")]
        users: Option<PathBuf>,
        /// Host name or IP the HTTPS certificate is issued for (default: the listen IP).
        #[arg(long)]
        host: Option<String>,
    },
    /// Verify a signed overlay configuration document (overlay.xml) and print what it says.
    Verify {
        /// The document.
        file: PathBuf,
        /// Require it to be signed by this CA certificate (PEM); without it the document
        /// must be signed by one of its own root-certs.
        #[arg(long, value_name = "PEM")]
        ca_cert: Option<PathBuf>,
    },
}

/// `p2psip enroll` arguments.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// Enrollment server URL, e.g. https://192.0.2.5:8443/.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// User name to enroll as.
    #[arg(long)]
    pub user: String,
    /// File whose first line is the password.
    #[arg(long, value_name = "FILE", conflicts_with = "password")]
    pub password_file: Option<PathBuf>,
    /// The password (visible in the process list; prefer --password-file).
    #[arg(long)]
    pub password: Option<String>,
    /// Data directory to write node.key.pem, node.cert.pem, ca.cert.pem, overlay.xml into.
    #[arg(long, value_name = "DATA_DIR")]
    pub dir: PathBuf,
    /// The overlay CA certificate (PEM), obtained out of band.
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
    /// Without --ca-cert: trust the server on first contact and pin the CA from its signed
    /// configuration document.
    #[arg(long)]
    pub insecure_first_contact: bool,
    /// How many Node-IDs to ask for.
    #[arg(long, default_value_t = 1)]
    pub nodeids: usize,
}

fn runtime() -> Result<tokio::runtime::Runtime, PkiError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| PkiError::Enroll(format!("cannot start the async runtime: {e}")))
}

fn finish(r: Result<(), PkiError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `p2psip ca ...`.
pub fn run_ca(cmd: CaCommand) -> ExitCode {
    finish(match cmd {
        CaCommand::Init {
            overlay,
            dir,
            enrollment_url,
            bootstrap,
        } => super::ca::Ca::init(
            &dir,
            &overlay,
            enrollment_url.as_deref(),
            &bootstrap,
            super::now_unix(),
        )
        .map(|ca| {
            tracing::info!(
                "created overlay CA for overlay {overlay} in {}: {}, {}, {}; CA certificate SHA-256 fingerprint {}",
                dir.display(),
                super::ca::CA_KEY,
                super::ca::CA_CERT,
                super::ca::OVERLAY_XML,
                hex::encode(super::sign::sha256(ca.cert_der()))
            );
        }),
        CaCommand::Serve {
            dir,
            listen,
            users,
            host,
        } => runtime().and_then(|rt| {
            rt.block_on(async {
                let listener = super::enroll::bind(listen).await?;
                super::enroll::serve(
                    &dir,
                    listener,
                    users,
                    host,
                    async {
                        let _ = tokio::signal::ctrl_c().await;
                    },
                    super::now_unix(),
                )
                .await
            })
        }),
        CaCommand::Verify { file, ca_cert } => verify_config(&file, ca_cert.as_deref()),
    })
}

/// Runs `p2psip enroll`.
pub fn run_enroll(a: EnrollArgs) -> ExitCode {
    let password = match (&a.password, &a.password_file) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(f)) => super::read(f).map(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        }),
        (None, None) => Err(PkiError::Enroll(
            "give the password with --password-file FILE or --password P".into(),
        )),
    };
    finish(password.and_then(|password| {
        let opts = super::enroll::EnrollOptions {
            server: a.server,
            user: a.user,
            password,
            data_dir: a.dir,
            ca_cert: a.ca_cert,
            insecure_first_contact: a.insecure_first_contact,
            nodeids: a.nodeids,
            ca_fingerprint: None,
            overlay: None,
        };
        let id = runtime()?.block_on(super::enroll::enroll(&opts, super::now_unix()))?;
        tracing::info!(
            "enrolled in overlay {} as user {}: Node-ID {}; wrote {}",
            id.overlay,
            id.user,
            id.node_ids
                .iter()
                .map(|i| hex::encode(i.to_array()))
                .collect::<Vec<_>>()
                .join(", "),
            opts.data_dir.display()
        );
        Ok(())
    }))
}

fn verify_config(
    file: &std::path::Path,
    ca_cert: Option<&std::path::Path>,
) -> Result<(), PkiError> {
    let pin = ca_cert
        .map(|p| super::read_pem(p, "CERTIFICATE"))
        .transpose()?;
    let xml = String::from_utf8_lossy(&super::read(file)?).into_owned();
    let c = super::config_doc::verify(&xml, pin.as_deref(), None, super::now_unix())
        .map_err(|e| PkiError::Config(format!("{}: {e}", file.display())))?;
    println!(
        "{}: OK: overlay {}, sequence {}, expires {}, signed by CA with SHA-256 fingerprint {}, kinds {}",
        file.display(),
        c.overlay,
        c.sequence,
        c.expiration,
        hex::encode(super::sign::sha256(&c.signer)),
        c.kinds.join(", ")
    );
    Ok(())
}
