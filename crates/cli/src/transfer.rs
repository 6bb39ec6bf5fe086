//! `consentry import` and `consentry export consents`: moving consents in from another platform and out,
//! through the service layer (`consentry_service::transfer`) on a local store, or, for an import, through
//! a running server's `POST /v1/import`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use consentry_service::transfer::export::{ExportOptions, Exporter};
use consentry_service::transfer::import::{self, Format, ImportOptions, ImportReport, Observer, Progress};
use consentry_service::transfer::line::LineError;
use indicatif::{ProgressBar, ProgressStyle};

use crate::Common;

#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Jsonl,
    Csv,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Jsonl => Format::JsonLines,
            FormatArg::Csv => Format::Csv,
        }
    }
}

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    common: Common,
    /// The changes: JSON Lines, or CSV with the header docs/import.md describes.
    #[arg(long, value_name = "FILE")]
    file: PathBuf,
    /// The file's format [default: csv for a .csv file, else jsonl]
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// The platform the changes come from: with each line's source_id, what makes a change unique, so
    /// running the same file again imports nothing twice. Recorded as the actor `import:<source>`.
    #[arg(long, value_name = "NAME", default_value = "import")]
    source: String,
    /// Where refused lines are written (line number, reason, detail) [default: the file's name with
    /// `.errors.jsonl`]
    #[arg(long, value_name = "FILE")]
    errors: Option<PathBuf>,
    /// All or nothing: check every line first and import nothing if one is refused.
    #[arg(long)]
    strict: bool,
    /// A running server to import through (with --key), instead of the store named by --data or
    /// --database.
    #[arg(long, value_name = "URL", requires = "key", conflicts_with_all = ["data", "database"])]
    url: Option<String>,
    /// An API key with the `import:write` scope, for --url.
    #[arg(long, value_name = "KEY", requires = "url")]
    key: Option<String>,
}

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    common: Common,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: FormatArg,
    /// Only what was recorded at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Every event, not only the statements in force.
    #[arg(long)]
    history: bool,
    /// Each subject's identifiers (their values, decrypted) on their first line.
    #[arg(long)]
    identifiers: bool,
}

/// Shows the run's progress and writes refused lines to the error file as they come.
struct Cli {
    bar: ProgressBar,
    errors: std::io::BufWriter<std::fs::File>,
    failed: Option<std::io::Error>,
}

impl Observer for Cli {
    fn progress(&mut self, p: Progress) {
        self.bar.set_position(p.bytes);
        self.bar.set_message(format!(
            "{} lines, {} imported, {} already there, {} refused",
            p.lines, p.imported, p.skipped, p.failed
        ));
    }

    fn refused(&mut self, e: &LineError) {
        if self.failed.is_none()
            && let Err(err) = write_error(&mut self.errors, e)
        {
            self.failed = Some(err);
        }
    }
}

fn write_error(out: &mut impl std::io::Write, e: &LineError) -> std::io::Result<()> {
    writeln!(out, "{}", serde_json::to_string(e).map_err(std::io::Error::other)?)
}

fn errors_path(file: &Path, errors: Option<PathBuf>) -> PathBuf {
    errors.unwrap_or_else(|| {
        let mut name = file.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".errors.jsonl");
        file.with_file_name(name)
    })
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {percent}% {binary_bytes_per_sec} ETA {eta}\n{msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

fn summary(report: &ImportReport, errors: &Path) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{} lines: {} imported, {} already imported before, {} refused{}.",
        report.lines,
        report.imported,
        report.skipped,
        report.failed,
        if report.failed > 0 { format!(" (see {})", errors.display()) } else { String::new() }
    );
    if report.aborted {
        let _ = writeln!(out, "Strict mode: a line was refused, so nothing was imported.");
    }
}

pub async fn import(args: ImportArgs) -> Result<()> {
    let format: Format = args.format.map_or_else(
        || {
            if args.file.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
                Format::Csv
            } else {
                Format::JsonLines
            }
        },
        Format::from,
    );
    let options = ImportOptions { format, strict: args.strict, ..ImportOptions::new(args.source.clone()) };
    options.validate().map_err(|e| anyhow::anyhow!("--source: {e}"))?;
    let size =
        std::fs::metadata(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?.len();
    let errors = errors_path(&args.file, args.errors.clone());
    let error_file =
        std::fs::File::create(&errors).with_context(|| format!("cannot write {}", errors.display()))?;
    let mut cli = Cli { bar: progress_bar(size), errors: std::io::BufWriter::new(error_file), failed: None };
    let report = match (&args.url, &args.key) {
        (Some(url), Some(key)) => remote(url, key, &args.file, &options, &mut cli).await?,
        _ => local(&args.common, &args.file, &options, &mut cli).await?,
    };
    cli.bar.finish_and_clear();
    cli.errors.flush()?;
    if let Some(e) = cli.failed {
        bail!("cannot write {}: {e}", errors.display());
    }
    summary(&report, &errors);
    if report.aborted {
        bail!("nothing imported");
    }
    Ok(())
}

async fn local(common: &Common, file: &Path, options: &ImportOptions, cli: &mut Cli) -> Result<ImportReport> {
    let config = crate::load_config(common)?;
    let opened = consentry_service::open(config).await.context("cannot open the store")?;
    let state = opened.state;
    let path = file.to_owned();
    let open = || {
        let path = path.clone();
        async move { Ok(tokio::io::BufReader::with_capacity(256 * 1024, tokio::fs::File::open(path).await?)) }
    };
    let report = import::run(&state, options, open, cli).await;
    state.store.close().await;
    Ok(report?)
}

/// Streams the file to a server's `POST /v1/import` and reads its report.
async fn remote(
    url: &str,
    key: &str,
    file: &Path,
    options: &ImportOptions,
    cli: &mut Cli,
) -> Result<ImportReport> {
    use futures_util::StreamExt as _;
    let handle =
        tokio::fs::File::open(file).await.with_context(|| format!("cannot read {}", file.display()))?;
    let bar = cli.bar.clone();
    let mut sent = 0u64;
    let stream = tokio_util::io::ReaderStream::with_capacity(handle, 256 * 1024).map(move |chunk| {
        if let Ok(c) = &chunk {
            sent += c.len() as u64;
            bar.set_position(sent);
        }
        chunk
    });
    let content_type = match options.format {
        Format::Csv => "text/csv",
        Format::JsonLines => "application/x-ndjson",
    };
    let endpoint = format!("{}/v1/import", url.trim_end_matches('/'));
    let client = reqwest::Client::new();
    let sent = client
        .post(&endpoint)
        .bearer_auth(key)
        .header("content-type", content_type)
        .query(&[
            ("source", options.source.as_str()),
            ("strict", if options.strict { "true" } else { "false" }),
        ])
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            // A server that refuses the key answers before reading the file and may close the connection
            // while the file is still going out: ask again without it (a type no import takes, so nothing
            // is imported) to tell a refusal from a network failure.
            let probe =
                client.post(&endpoint).bearer_auth(key).header("content-type", "text/plain").send().await;
            if let Ok(probe) = probe
                && matches!(probe.status().as_u16(), 401 | 403)
            {
                let status = probe.status();
                let body = probe.text().await.unwrap_or_default();
                bail!("the server refused the import ({status}): {body}");
            }
            return Err(anyhow::Error::new(e).context(format!("cannot reach {endpoint}")));
        }
    };
    let status = response.status();
    let body = response.text().await.context("the server's answer could not be read")?;
    if !status.is_success() {
        bail!("the server refused the import ({status}): {body}");
    }
    let report: ImportReport =
        serde_json::from_str(&body).context("the server's answer is not an import report")?;
    for e in &report.errors {
        cli.refused(e);
    }
    Ok(report)
}

pub async fn export(args: ExportArgs) -> Result<()> {
    let since = args
        .since
        .as_deref()
        .map(|t| {
            consentry_core::Timestamp::parse(t)
                .with_context(|| format!("--since {t:?} is not an RFC 3339 time"))
        })
        .transpose()?;
    let config = crate::load_config(&args.common)?;
    let store = crate::open_store_read_only(&config).await?;
    let options = ExportOptions {
        format: args.format.into(),
        since,
        history: args.history,
        identifiers: args.identifiers,
        // The operator holds the vault's key: what it holds goes along whenever the key is there.
        evidence: true,
        ages: true,
    };
    let mut exporter = Exporter::new(store.clone(), options);
    // The vault's key, when there is one (a store that never made one seals nothing): evidence, ages and
    // identifiers are decrypted with it. Never made here: the export only reads.
    if config.kek.is_some() || config.kek_path().is_file() {
        let kek = consentry_service::vault::load_kek(config.kek.as_deref(), &config.kek_path())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        exporter = exporter.with_vault(kek);
    } else if args.identifiers {
        bail!("--identifiers needs the vault's key (CONSENTRY_KEK or the key file)");
    }
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, std::io::stdout().lock());
    let result = async {
        while let Some(page) = exporter.next_page().await? {
            out.write_all(page.as_bytes())?;
        }
        out.flush()?;
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result
}
