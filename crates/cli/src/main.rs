//! The `consentry` binary: parses the command line and calls into the server and store crates.

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use consentry_service::Config;
use consentry_service::auth::Scope;
use consentry_service::config::{Flags, LogFormat};
use tokio_util::sync::CancellationToken;

mod transfer;

#[derive(Parser)]
#[command(name = "consentry", version, about = "Consent and personal-data control, self-hosted.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// Configuration file (TOML); see config.default.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data folder of the embedded store [env: CONSENTRY_DATA] [default: ./consentry-data]
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// PostgreSQL URL; use PostgreSQL instead of the embedded store [env: CONSENTRY_DATABASE_URL]
    #[arg(long, value_name = "URL")]
    database: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on [env: CONSENTRY_LISTEN] [default: 127.0.0.1:8080]
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Log format, text or json [env: CONSENTRY_LOG_FORMAT]
        #[arg(long, value_name = "FORMAT")]
        log_format: Option<String>,
    },
    /// Create the data folder, the first admin key and the default catalogue, then exit.
    Init {
        #[command(flatten)]
        common: Common,
    },
    /// Manage API keys. `list` works while a server runs on the same data folder; the others change it,
    /// so with the embedded store they need it stopped.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage the catalogue offline (with the embedded store, the server must be stopped).
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Inspect downstream destinations and their deliveries (read only: works while a server runs).
    Destinations {
        #[command(subcommand)]
        command: DestinationsCommand,
    },
    /// Verify or export the ledger (read only: works while a server runs).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The operator console's data (with the embedded store, the server must be stopped).
    Console {
        #[command(subcommand)]
        command: ConsoleCommand,
    },
    /// Import consent changes from another platform (JSON Lines or CSV, docs/import.md): into the store
    /// (with the embedded store, the server must be stopped), or through a running server with --url.
    /// Running the same file again imports nothing twice, and resumes an interrupted run.
    Import(transfer::ImportArgs),
    /// Export what the store holds, in the line format `import` reads (read only: works while a server
    /// runs).
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Apply the PostgreSQL migrations and exit (they also run at every start).
    Migrate {
        #[command(flatten)]
        common: Common,
    },
    /// Take a consistent online copy of the embedded store into a new folder.
    Backup {
        /// Data folder to copy [default: ./consentry-data]
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// New (or empty) folder for the copy.
        out: PathBuf,
    },
    /// Replace the embedded store with a backup. The server must be stopped.
    Restore {
        /// Data folder to replace [default: ./consentry-data]
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Folder made by `consentry backup`.
        backup: PathBuf,
        /// Confirm that the current contents of the data folder are to be replaced.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Every subject's current consents (or, with --history, every event) to standard output.
    Consents(transfer::ExportArgs),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key and print its secret once.
    Create {
        #[command(flatten)]
        common: Common,
        /// A name for the key, unique among active keys (e.g. the service that uses it).
        #[arg(long)]
        name: String,
        /// What the key may do; repeat for several. `admin` may do everything; `metrics` reads /metrics
        /// when it is not public.
        #[arg(long = "scope", value_name = "SCOPE", required = true, value_parser = scope_names())]
        scopes: Vec<String>,
    },
    /// List active keys: id, name, scopes and creation time, tab-separated. Never the secrets.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Revoke a key by id.
    Revoke {
        #[command(flatten)]
        common: Common,
        /// The key's id, as `keys list` shows it.
        id: String,
    },
    /// Make a new current receipt-signing key; old keys stay published for verification. Restart running
    /// servers afterwards so they sign with it.
    RotateSigning {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum DestinationsCommand {
    /// List destinations: id, kind, name, paused, flagged (has dead letters), URL and filter.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// List one destination's deliveries, optionally only `pending`, `delivered` or `dead` ones.
    Deliveries {
        #[command(flatten)]
        common: Common,
        /// The destination's id, as `destinations list` shows it.
        id: String,
        /// Only deliveries in this state.
        #[arg(long, value_parser = ["pending", "delivered", "dead"])]
        status: Option<String>,
        /// At most this many deliveries.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum ConsoleCommand {
    /// Forget the overview's day counters and fold the whole ledger into them again (when they were lost
    /// or are in doubt); a running node's worker then goes on from where this ends.
    RebuildRollups {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the ledger's hash chain and signed checkpoints: of a data folder or database, or of an
    /// exported file against a JWKS. Exits non-zero and names the first bad event on a break.
    Verify {
        #[command(flatten)]
        common: Common,
        /// An exported ledger (JSON Lines) to verify instead of a store.
        #[arg(long, value_name = "FILE", requires = "jwks")]
        file: Option<PathBuf>,
        /// The JWK Set (e.g. saved from /.well-known/jwks.json) that verifies the file's checkpoints.
        #[arg(long, value_name = "FILE")]
        jwks: Option<PathBuf>,
        /// An earlier signed tree checkpoint (saved from /v1/tlog/checkpoint, or a receipt's JSON holding
        /// one) the store's ledger must still contain: finds events cut off the end even when the later
        /// checkpoints were removed too.
        #[arg(long, value_name = "FILE", conflicts_with = "file")]
        since_checkpoint: Option<PathBuf>,
    },
    /// Write the ledger to standard output as JSON Lines: every event with its hashed fields, then the
    /// signed checkpoints.
    Export {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Validate and apply a catalogue file (YAML, or JSON when it ends in .json) as a new version.
    Apply {
        #[command(flatten)]
        common: Common,
        /// The catalogue document (see crates/core/src/default_catalog.yaml for one).
        file: PathBuf,
    },
}

/// The configuration: defaults, the `--config` file, `CONSENTRY_*` variables, then the common flags.
fn load_config(common: &Common) -> Result<Config> {
    load_config_with(common, Flags::default())
}

/// As [`load_config`], with a command's own `flags` (e.g. `serve --listen`) in the last layer too.
fn load_config_with(common: &Common, flags: Flags) -> Result<Config> {
    let flags = Flags { data: common.data.clone(), database: common.database.clone(), ..flags };
    Ok(Config::load(common.config.as_deref(), std::env::vars(), &flags)?)
}

/// Every API key scope, for `--scope`'s check and its help.
fn scope_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(Scope::ALL.map(Scope::as_str))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONSENTRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal, never into a file or a log collector.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn announce_admin_key(key: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\nConsentry created its first admin API key. It is shown only this once: keep it in a secret store.\n\n    {key}\n\nSend it as `Authorization: Bearer <key>`, and create narrower keys with POST /v1/keys or `consentry keys create`.\n"
    );
    let _ = out.flush();
}

async fn shutdown_signal(token: CancellationToken) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested; draining in-flight requests");
    token.cancel();
}

async fn serve(common: Common, listen: Option<SocketAddr>, log_format: Option<String>) -> Result<()> {
    let config = load_config_with(&common, Flags { listen, log_format, ..Flags::default() })?;
    init_logging(config.log_format);
    let listen = config.listen;
    let opened = consentry_service::open(config).await.context("cannot start")?;
    if let Some(key) = &opened.generated_admin_key {
        announce_admin_key(key);
    }
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(address = %listener.local_addr()?, subjects = opened.state.engine.subject_count(), "Consentry is serving");
    let token = CancellationToken::new();
    tokio::spawn(shutdown_signal(token.clone()));
    consentry_server::serve(opened.state, listener, token).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn init(common: Common) -> Result<()> {
    let config = load_config(&common)?;
    let store = open_store(&config).await?;
    let generated =
        consentry_service::bootstrap(store.as_ref(), config.bootstrap_admin_key.as_deref()).await?;
    let catalog = consentry_service::ensure_catalog(store.as_ref()).await?;
    store.close().await;
    match generated {
        Some(key) => announce_admin_key(&key),
        None => println!(
            "The data folder {} is ready (it was initialised before, or the admin key came from CONSENTRY_BOOTSTRAP_ADMIN_KEY).",
            config.data.display()
        ),
    }
    println!("Catalogue version {} is current.", catalog.stored.version);
    Ok(())
}

async fn open_store(config: &Config) -> Result<std::sync::Arc<dyn consentry_store::Store>> {
    let store_config = match &config.database_url {
        Some(url) => consentry_store::StoreConfig::postgres(url.clone()),
        None => consentry_store::StoreConfig::embedded(&config.data),
    };
    consentry_store::open(store_config).await.with_context(|| match &config.database_url {
        Some(_) => "cannot open the PostgreSQL database".to_owned(),
        None => format!("cannot open the data folder {}", config.data.display()),
    })
}

/// The store opened to read only: with the embedded store, beside a server running on the same folder.
async fn open_store_read_only(config: &Config) -> Result<std::sync::Arc<dyn consentry_store::Store>> {
    let store_config = match &config.database_url {
        Some(url) => consentry_store::StoreConfig::postgres(url.clone()),
        None => consentry_store::StoreConfig::embedded(&config.data),
    };
    consentry_store::open_read_only(store_config).await.with_context(|| match &config.database_url {
        Some(_) => "cannot open the PostgreSQL database".to_owned(),
        None => format!("cannot read the data folder {}", config.data.display()),
    })
}

fn data_dir(data: Option<PathBuf>) -> Result<PathBuf> {
    let config = Config::load(None, std::env::vars(), &Flags { data, ..Flags::default() })?;
    Ok(config.data)
}

async fn keys(command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Create { common, name, scopes } => {
            let config = load_config(&common)?;
            let request = consentry_service::keys::CreateKey { name, scopes };
            // Checked before the store is opened, so a wrong request touches no data folder.
            request.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
            let store = open_store(&config).await?;
            let created = consentry_service::keys::create(store.as_ref(), request, "cli").await;
            store.close().await;
            let key = created.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("Created key {} ({}) with scopes {}.", key.id, key.name, key.scopes.join(", "));
            println!("Its secret is shown only this once:\n\n    {}\n", key.key);
        }
        KeysCommand::List { common } => {
            let config = load_config(&common)?;
            let store = open_store_read_only(&config).await?;
            let list = consentry_service::keys::list(store.as_ref()).await;
            store.close().await;
            for k in list?.keys {
                println!("{}\t{}\t{}\t{}", k.id, k.name, k.scopes.join(","), k.created_at);
            }
        }
        KeysCommand::RotateSigning { common } => {
            let config = load_config(&common)?;
            let store = open_store(&config).await?;
            let kid = consentry_service::signing::rotate(store.as_ref()).await;
            store.close().await;
            println!("New current signing key {}; earlier keys stay published for verification.", kid?);
        }
        KeysCommand::Revoke { common, id } => {
            let config = load_config(&common)?;
            let store = open_store(&config).await?;
            let revoked = consentry_service::keys::revoke_stored(store.as_ref(), &id).await;
            store.close().await;
            match revoked {
                Ok(()) => {}
                Err(consentry_service::Error::NotFound(_)) => bail!("no active key has the id {id}"),
                Err(e) => bail!("{e}"),
            }
            println!("Revoked {id}.");
        }
    }
    Ok(())
}

async fn catalog(command: CatalogCommand) -> Result<()> {
    match command {
        CatalogCommand::Apply { common, file } => {
            let config = load_config(&common)?;
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let content_type = if file.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
                "application/json"
            } else {
                "application/yaml"
            };
            let catalog = match consentry_service::catalog::read(content_type, &bytes) {
                Ok(c) => c,
                Err(consentry_service::Error::InvalidCatalog(problems)) => {
                    for p in &problems {
                        eprintln!("{}: {}", if p.path.is_empty() { "document" } else { &p.path }, p.message);
                    }
                    bail!(
                        "{} is not a valid catalogue ({} problem(s)); nothing was changed",
                        file.display(),
                        problems.len()
                    );
                }
                Err(e) => bail!("{}: {e}", file.display()),
            };
            let store = open_store(&config).await?;
            let stored = store.apply_catalog(catalog.document()).await;
            store.close().await;
            let stored = stored?;
            println!(
                "Applied catalogue version {} ({} purposes, {} notices).",
                stored.version,
                stored.document.purposes.len(),
                stored.document.notices.len()
            );
        }
    }
    Ok(())
}

async fn audit(command: AuditCommand) -> Result<bool> {
    match command {
        AuditCommand::Verify { file: Some(file), jwks: Some(jwks), .. } => {
            let jwks_text =
                std::fs::read(&jwks).with_context(|| format!("cannot read {}", jwks.display()))?;
            let jwks: consentry_core::proof::Jwks = serde_json::from_slice(&jwks_text)
                .with_context(|| format!("{} is not a JWK Set", jwks.display()))?;
            let reader = std::io::BufReader::new(
                std::fs::File::open(&file).with_context(|| format!("cannot open {}", file.display()))?,
            );
            let report = consentry_client::verify::verify_export(reader, &jwks);
            print_out(&serde_json::to_string_pretty(&report)?);
            if let Some(bad) = &report.first_bad {
                eprintln!("{}: line {}: {}", file.display(), bad.line, bad.problem);
            }
            Ok(report.ok)
        }
        AuditCommand::Verify { common, since_checkpoint, .. } => {
            let since = since_checkpoint.as_deref().map(read_checkpoint).transpose()?;
            let config = load_config(&common)?;
            let store = open_store_read_only(&config).await?;
            let result = consentry_service::audit::verify_store(store.as_ref()).await;
            let tree = consentry_service::audit::verify_tree(
                store.as_ref(),
                config.tlog_origin.as_deref(),
                since.as_deref(),
            )
            .await;
            store.close().await;
            let mut report = result?;
            report.tree = tree?;
            if let Some(tree) = &report.tree {
                report.ok &= tree.ok;
                if let Some(bad) = &tree.first_bad {
                    eprintln!("the ledger's tree does not verify: {bad}");
                }
            } else if since.is_some() {
                report.ok = false;
                eprintln!("the store has no signed tree checkpoint to check the given one against");
            }
            print_out(&serde_json::to_string_pretty(&report)?);
            if let Some(bad) = &report.first_bad {
                match bad.seq {
                    Some(seq) => eprintln!("the ledger does not verify: {} (event seq {seq})", bad.problem),
                    None => eprintln!("the ledger does not verify: {}", bad.problem),
                }
            }
            Ok(report.ok)
        }
        AuditCommand::Export { common } => {
            let config = load_config(&common)?;
            let store = open_store_read_only(&config).await?;
            let result = export(store.as_ref()).await;
            store.close().await;
            result?;
            Ok(true)
        }
    }
}

/// A signed tree checkpoint from `path`: the note itself, or a receipt's JSON holding it as `checkpoint`.
fn read_checkpoint(path: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !text.trim_start().starts_with('{') {
        return Ok(text);
    }
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let note = json.get("receipt").unwrap_or(&json).get("checkpoint").and_then(|c| c.as_str());
    note.map(str::to_owned).with_context(|| format!("{} holds no checkpoint", path.display()))
}

async fn destinations(command: DestinationsCommand) -> Result<()> {
    match command {
        DestinationsCommand::List { common } => {
            let config = load_config(&common)?;
            let store = open_store_read_only(&config).await?;
            let list = store.destinations().await;
            store.close().await;
            for d in list? {
                print_out(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}{}\t{}",
                    d.id,
                    d.kind,
                    d.name,
                    if d.paused { "paused" } else { "active" },
                    if d.flagged { "flagged" } else { "ok" },
                    d.url,
                    d.target.map(|t| format!(" ({t})")).unwrap_or_default(),
                    d.event_types.join(","),
                ));
            }
        }
        DestinationsCommand::Deliveries { common, id, status, limit } => {
            let config = load_config(&common)?;
            let store = open_store_read_only(&config).await?;
            let rows = store.deliveries(&id, status.as_deref(), 0, limit).await;
            store.close().await;
            for r in rows? {
                print_out(&format!(
                    "{}\t{}\t{}\tattempts={}\t{}",
                    r.outbox_id,
                    r.event_type,
                    r.status,
                    r.attempts,
                    r.last_error.unwrap_or_default()
                ));
            }
        }
    }
    Ok(())
}

/// Prints a line to standard output; a closed pipe (`| head`) is not an error worth a panic.
fn print_out(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

async fn export(store: &dyn consentry_store::Store) -> Result<()> {
    use consentry_client::verify::{export_checkpoint_line, export_event_line};
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // Checkpoints are read first: the ledger only grows, so the events read after cover every one of them.
    let checkpoints = store.checkpoints().await?;
    let mut after = 0;
    loop {
        let page = store.events_page(after, 5000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            writeln!(out, "{}", export_event_line(e))?;
        }
    }
    for c in &checkpoints {
        writeln!(out, "{}", export_checkpoint_line(&c.jws))?;
    }
    out.flush()?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Destinations { command } => destinations(command).await,
            Command::Audit { command } => match audit(command).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(anyhow::anyhow!("verification failed")),
                Err(e) => Err(e),
            },
            Command::Serve { common, listen, log_format } => serve(common, listen, log_format).await,
            Command::Init { common } => init(common).await,
            Command::Keys { command } => keys(command).await,
            Command::Console { command: ConsoleCommand::RebuildRollups { common } } => {
                let config = load_config(&common)?;
                let store = open_store(&config).await?;
                let folded = consentry_service::console::rollups::rebuild(store.as_ref()).await;
                store.close().await;
                println!("Rebuilt the console's rollups from {} ledger events.", folded?);
                Ok(())
            }
            Command::Catalog { command } => catalog(command).await,
            Command::Import(args) => transfer::import(args).await,
            Command::Export { command: ExportCommand::Consents(args) } => transfer::export(args).await,
            Command::Migrate { common } => {
                let config = load_config(&common)?;
                let Some(url) = &config.database_url else {
                    bail!("migrate is for PostgreSQL: give --database or CONSENTRY_DATABASE_URL (the embedded store migrates itself at start)");
                };
                let version = consentry_store::postgres::PostgresStore::migrate_only(url).await?;
                println!("The database is at schema version {version}.");
                Ok(())
            }
            Command::Backup { data, out } => {
                let dir = data_dir(data)?;
                let target = out.clone();
                tokio::task::spawn_blocking(move || consentry_store::sqlite::backup(&dir, &target)).await??;
                println!("Backed up to {}.", out.display());
                Ok(())
            }
            Command::Restore { data, backup, yes } => {
                if !yes {
                    bail!("restore replaces everything in the data folder; run again with --yes to confirm");
                }
                let dir = data_dir(data)?;
                let shown = dir.display().to_string();
                tokio::task::spawn_blocking(move || consentry_store::sqlite::restore(&backup, &dir)).await??;
                println!("Restored the store in {shown}.");
                Ok(())
            }
            Command::Openapi => {
                print!("{}", consentry_server::openapi::document());
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every subcommand, flag and argument says what it is for in `--help`.
    #[test]
    fn everything_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(name.clone());
                }
                walk(sub, &name, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "consentry", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:?}");
        Cli::command().debug_assert();
    }
}
