"""The ``policylab`` command line: a thin face over ingest, retrieval and answering."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from assistant.settings import get_settings

app = typer.Typer(help="Policy Lab Assistant: cited answers from your cultural-diplomacy library.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)

FilterOption = Annotated[
    Optional[list[str]],
    typer.Option("--filter", "-f", help="Metadata filter key=value (doc_type, country, region, language, publisher, title, source_file); repeatable."),
]
YearOption = Annotated[Optional[str], typer.Option("--year", help="Year range FROM:TO, e.g. 2020:2026 (either end optional).")]


def _fail(message: str, code: int = 1) -> None:
    errors.print(f"[bold red]Error:[/] {message}")
    raise typer.Exit(code)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show debug logging.")] = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (walked recursively).")],
    owner: Annotated[str, typer.Option(help="Make the documents private to this user (default: shared library).")] = "",
    wait: Annotated[float, typer.Option(help="Seconds to wait if another ingest is running (default: refuse at once).")] = 0.0,
) -> None:
    """Index PDF, DOCX, TXT, Markdown and HTML files; prints a summary and exits 1 if any file failed."""
    from ingest.pipeline import IngestBusyError, ingest_paths
    from ingest.vectors import VectorStoreUnavailable

    settings = get_settings()
    for path in paths:
        if not path.exists():
            _fail(f"{path} does not exist.")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=errors, transient=False) as progress:
        files_task = progress.add_task("files", total=None)
        chunk_task = progress.add_task("pages → chunks", total=None)

        def on_progress(event: str, done: int, total: int) -> None:
            if event == "file":
                progress.update(files_task, completed=done, total=total)
                progress.update(chunk_task, completed=0, total=None, description="pages → chunks")
            elif event == "pages":
                progress.update(chunk_task, description=f"{total} pages → chunks")
            else:
                progress.update(chunk_task, completed=done, total=total)

        try:
            results = ingest_paths(paths, settings, owner=owner, progress=on_progress, lock_timeout=wait)
        except (IngestBusyError, VectorStoreUnavailable) as exc:
            _fail(str(exc))
    table = Table(title="Ingest summary")
    for column in ("file", "pages", "chunks", "status", "details"):
        table.add_column(column, overflow="fold")
    for r in results:
        style = {"failed": "red", "skipped": "yellow", "unchanged": "dim"}.get(r.status, "green")
        details = r.reason or "; ".join(r.warnings)
        table.add_row(str(r.path), str(r.pages), str(r.chunks), f"[{style}]{r.status}[/]", details)
    console.print(table)
    failed = [r for r in results if r.failed]
    indexed = sum(r.status in {"indexed", "replaced"} for r in results)
    console.print(f"{indexed} indexed, {sum(r.status == 'unchanged' for r in results)} unchanged, {len(failed)} failed.")
    if failed:
        raise typer.Exit(1)


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="What to look for, in any language.")],
    k: Annotated[int, typer.Option("-k", help="Number of passages.")] = 5,
    filter: FilterOption = None,  # noqa: A002 (CLI option name)
    year: YearOption = None,
    as_user: Annotated[str, typer.Option("--as-user", help="Also search this user's private uploads.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the best passages with document, page or section, and score."""
    from assistant.retrieval import Retriever, SearchFilters, passages_to_json
    from ingest.vectors import VectorStoreUnavailable

    try:
        filters = SearchFilters.parse(filter, year)
    except ValueError as exc:
        _fail(str(exc))
    if not question.strip():
        _fail("The question is empty: type what you are looking for.")
    try:
        passages = Retriever(get_settings()).search(question, k=k, filters=filters, viewer=as_user)
    except VectorStoreUnavailable as exc:
        _fail(str(exc))
    if as_json:
        print(passages_to_json(passages))
        return
    if not passages:
        console.print("No passage found (is the library empty, or are the filters too narrow? See `policylab library`).")
        return
    for rank, p in enumerate(passages, start=1):
        snippet = " ".join(p.text.split())
        snippet = snippet[:400] + ("…" if len(snippet) > 400 else "")
        console.print(f"[bold]{rank}. {p.title}[/] ({p.year or 'n.d.'}) — {p.location}  [dim]score {p.score:.4f}[/]")
        console.print(f"   [dim]{p.source_file}[/]\n   {snippet}\n", highlight=False)


@app.command()
def library(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the indexed documents and their metadata."""
    from ingest.library import Library

    docs = Library.open(get_settings()).documents()
    if as_json:
        print(json.dumps([d.to_dict() for d in docs], ensure_ascii=False, indent=2))
        return
    if not docs:
        console.print(f"The library at {get_settings().data_dir} is empty. Add documents with "
                      "`policylab ingest PATH...` (or `make index` for the default library in knowledge/).")
        return
    table = Table(title=f"Library: {len(docs)} documents")
    for column in ("file", "title", "publisher", "year", "type", "country/region", "lang", "pages", "chunks", "owner"):
        table.add_column(column, overflow="fold")
    for d in docs:
        table.add_row(d.source_file, d.title, d.publisher, str(d.year or ""), d.doc_type, d.country or d.region,
                      d.language, str(d.pages), str(d.chunks), d.owner or "shared")
    console.print(table)


@app.command()
def remove(document: Annotated[str, typer.Argument(help="File name or document id (see `policylab library`).")]) -> None:
    """Remove a document and all its passages from the index."""
    from ingest.library import Library
    from filelock import FileLock, Timeout

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(settings.data_dir / "ingest.lock"), timeout=30):
            removed = Library.open(settings).remove(document)
    except Timeout:
        _fail("An ingest is running on this data directory; try again when it has finished.")
    if removed is None:
        _fail(f"No document {document!r} in the library; `policylab library` lists them.")
    console.print(f"Removed {removed.source_file} ({removed.chunks} passages).")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question or request, in any language.")],
    mode: Annotated[str, typer.Option("--mode", "-m", help="ask | brief | draft")] = "ask",
    filter: FilterOption = None,  # noqa: A002 (CLI option name)
    year: YearOption = None,
    language: Annotated[Optional[str], typer.Option(help="Answer language (ISO code); default: the question's.")] = None,
    as_user: Annotated[str, typer.Option("--as-user", help="Also use this user's private uploads.")] = "",
    backend: Annotated[Optional[str], typer.Option(help="auto | openai | local | extractive (overrides POLICYLAB_LLM_BACKEND).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Answer from the library with verified citations (or say that the library does not cover it)."""
    import asyncio

    from assistant.answer import AnswerRequest, FinalEvent, InputError, NoticeEvent, SourcesEvent, TokenEvent
    from assistant.errors import ModelUnavailableError
    from assistant.retrieval import SearchFilters
    from assistant.service import build_engine
    from ingest.vectors import VectorStoreUnavailable

    try:
        filters = SearchFilters.parse(filter, year)
    except ValueError as exc:
        _fail(str(exc))
    settings = get_settings()
    if backend:
        settings = settings.model_copy(update={"llm_backend": backend})
    request = AnswerRequest(question, mode=mode, filters=filters, viewer=as_user, language=language)

    async def run():
        engine = build_engine(settings)
        final = None
        try:
            async for event in engine.stream(request):
                if isinstance(event, NoticeEvent):
                    errors.print(f"[yellow]{event.text}[/]")
                elif isinstance(event, SourcesEvent) and not as_json:
                    errors.print(f"[dim]{len(event.passages)} passages retrieved; answering with {engine.backend}…[/]")
                elif isinstance(event, TokenEvent) and not as_json:
                    errors.print(event.text, end="", highlight=False, markup=False)
                elif isinstance(event, FinalEvent):
                    final = event.answer
        finally:
            close = getattr(engine.model, "aclose", None)
            if close:
                await close()
        return final

    try:
        final = asyncio.run(run())
    except (InputError, ModelUnavailableError, VectorStoreUnavailable) as exc:
        _fail(str(exc))
    if as_json:
        print(final.to_json())
        return
    errors.print()
    console.rule("Verified answer")
    console.print(final.answer, highlight=False, markup=False)
    if final.citations:
        console.rule("Sources")
        for c in final.citations:
            where = f", {c.location}" if c.location else ""
            console.print(f"[{c.n}] {c.title} — {c.publisher or 'n.p.'}, {c.year or 'n.d.'}{where}", highlight=False, markup=False)
            console.print(f"    \u201c{c.quote}\u201d", highlight=False, markup=False)
    v = final.verification
    console.print(f"[dim]backend {final.backend}; citations kept {v.kept}, re-targeted {v.retargeted}, "
                  f"added {v.added}, removed {v.removed}; uncited sentences {v.uncited_sentences}; "
                  f"{final.timings.get('total_s', 0):.1f} s[/]")


@app.command("eval")
def eval_command(
    questions: Annotated[Path, typer.Option("--questions", help="Question file, JSONL (format: docs/evaluation.md).")],
    corpus: Annotated[Path, typer.Option("--corpus", help="Folder of documents to index and answer from.")],
    compare: Annotated[Optional[list[str]], typer.Option(
        "--compare", help="baseline (= baseline-naive + bm25) | naive | bm25; repeatable or comma-separated.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Report folder (default: reports/<question file name>).")] = None,
    backend: Annotated[Optional[str], typer.Option(help="auto | openai | local | extractive (overrides POLICYLAB_LLM_BACKEND).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Only the first N questions.")] = None,
) -> None:
    """Evaluate on a question set: metrics, baselines, report.json, report.md and plots in the out folder."""
    from assistant.errors import ModelUnavailableError
    from eval.harness import EvalConfig, default_command, run_eval
    from eval.report import LABELS

    try:
        config = EvalConfig(questions=questions, corpus=corpus, out=out or Path("reports") / questions.stem,
                            compare=compare or [], backend=backend, limit=limit, command=default_command())
        report = run_eval(config, progress=lambda text: errors.print(text, highlight=False, markup=False))
    except (ValueError, FileNotFoundError, RuntimeError, ModelUnavailableError) as exc:
        _fail(str(exc))
    table = Table(title=f"Evaluation: {report['meta']['questions']} questions ({report['meta']['backend']})")
    table.add_column("metric")
    for system in report["systems"]:
        table.add_column(system, justify="right")
    for metric, label in LABELS.items():
        values = [report["systems"][s].get(metric) for s in report["systems"]]
        if any(v is not None for v in values):
            table.add_row(label, *("—" if v is None else f"{v:.3f}" for v in values))
    console.print(table)
    console.print(f"Report: {config.out / 'report.md'}")


@app.command()
def serve(port: Annotated[int, typer.Option(help="Port on the app host (POLICYLAB_APP_HOST, default 127.0.0.1).")] = 8000) -> None:
    """Start the chat app (Chainlit) on 127.0.0.1:PORT; index the library first (`make run` does both)."""
    from assistant.app.auth import AccountError, ensure_first_account
    from assistant.app.launcher import serve as launch
    from ingest.store import LibraryStore

    settings = get_settings()
    try:
        created = ensure_first_account(settings)
    except AccountError as exc:
        _fail(str(exc))
    if created:
        console.print(f"[bold]First start:[/] created the administrator account [bold]{created[0]}[/] with password "
                      f"[bold]{created[1]}[/] (stored hashed in {settings.users_path}). "
                      "Add people with `policylab add-user NAME`.", highlight=False)
    if not LibraryStore(settings.library_db).complete_doc_ids():
        errors.print("[yellow]The library is empty: index documents with `policylab ingest knowledge/` (make run does it).[/]")
    console.print(f"Policy Lab Assistant on http://{settings.app_host}:{port} (Ctrl+C to stop)", highlight=False)
    launch(settings, port)


@app.command("add-user")
def add_user(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option(help="user | admin (admins can publish uploads to the shared library).")] = "user",
    password: Annotated[Optional[str], typer.Option(help="Password (prompted when omitted).")] = None,
) -> None:
    """Add or update an account of the chat app; the users file stores only a bcrypt hash of the password."""
    from assistant.app.auth import AccountError, add_user as add

    settings = get_settings()
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        account = add(settings.users_path, username, password, role)
    except AccountError as exc:
        _fail(str(exc))
    console.print(f"Saved {account.username} ({account.role}) in {settings.users_path}.", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
