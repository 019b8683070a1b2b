import type { Command } from 'commander';
import type { Collected } from './client.ts';

export type Cell = string | number | boolean | null | undefined;

/** One column of a table, or one field of a record: its heading and how a row shows in it. */
export interface Column<T> {
  header: string;
  value: (row: T) => Cell;
}

/**
 * Every command prints through this: aligned tables and `field: value` lines for people, or with
 * `--json` the resources as the API returns them, one JSON document on stdout for scripts. Notes for
 * people go to stderr so stdout stays parseable either way.
 */
export class Output {
  readonly json: boolean;

  constructor(json: boolean) {
    this.json = json;
  }

  /** Rows as a table with a heading line; `empty` says what is missing when there are none. */
  list<T>(rows: readonly T[], columns: ReadonlyArray<Column<T>>, empty: string): void {
    if (this.json) return this.#writeJson(rows);
    if (rows.length === 0) return this.#write(`${empty}\n`);
    const cells = [
      columns.map((column) => column.header.toUpperCase()),
      ...rows.map((row) => columns.map((column) => show(column.value(row)))),
    ];
    const widths = columns.map((_, index) => Math.max(...cells.map((line) => line[index]!.length)));
    const lines = cells.map((line) =>
      line
        .map((cell, index) => (index === line.length - 1 ? cell : cell.padEnd(widths[index]!)))
        .join('  ')
        .trimEnd(),
    );
    this.#write(`${lines.join('\n')}\n`);
  }

  /** A listing cut at `--limit`: the rows, and a note when the gateway has more. */
  page<T>(page: Collected<T>, columns: ReadonlyArray<Column<T>>, empty: string): void {
    this.list(page.items, columns, empty);
    if (page.more) this.note(`showing the first ${page.items.length}; raise --limit to see more`);
  }

  /** One resource as aligned `field: value` lines. */
  record<T>(value: T, fields: ReadonlyArray<Column<T>>): void {
    if (this.json) return this.#writeJson(value);
    const width = Math.max(...fields.map((field) => field.header.length)) + 1;
    this.#write(
      fields.map((field) => `${`${field.header}:`.padEnd(width)} ${show(field.value(value))}`).join('\n') +
        '\n',
    );
  }

  /** A view made of several parts: `value` for scripts, `render` prints the parts for people. */
  compose(value: unknown, render: () => void): void {
    if (this.json) this.#writeJson(value);
    else render();
  }

  /** A line of text for people (a heading, a gap between parts). */
  line(text: string): void {
    if (!this.json) this.#write(`${text}\n`);
  }

  /** What a command did: a sentence for people, `result` for scripts. */
  done(message: string, result: unknown): void {
    if (this.json) this.#writeJson(result);
    else this.#write(`${message}\n`);
  }

  /** A secret the server returns once (a new token): shown with a warning to keep it now. */
  secret(message: string, secret: string, result: unknown): void {
    this.compose(result, () => this.#write(`${message}\n\n    ${secret}\n\n`));
    this.note('Store this token now: it will not be shown again.');
  }

  /** A remark for people only (a warning, what to do next); never part of the JSON. */
  note(message: string): void {
    process.stderr.write(`${message}\n`);
  }

  #writeJson(value: unknown): void {
    this.#write(`${JSON.stringify(value, null, 2)}\n`);
  }

  #write(text: string): void {
    process.stdout.write(text);
  }
}

/** The output the command line asked for (`--json` is a global option). */
export function outputOf(command: Command): Output {
  return new Output(command.optsWithGlobals<{ json?: boolean }>().json === true);
}

/** An API timestamp to the second, still ISO and in UTC. */
export function time(iso: string | null | undefined): string | null {
  return iso ? iso.replace(/\.\d+Z$/, 'Z') : null;
}

/** When a token stops working, as a phrase: "expires 2025-09-01T12:00:00Z" or "does not expire". */
export function expiry(expiresAt: string | null): string {
  return expiresAt ? `expires ${time(expiresAt)}` : 'does not expire';
}

function show(cell: Cell): string {
  if (cell === null || cell === undefined || cell === '') return '-';
  if (typeof cell === 'boolean') return cell ? 'yes' : 'no';
  return String(cell);
}
