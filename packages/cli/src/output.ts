/** Output for people (aligned tables, plain lines) or, with --json, for scripts (JSON on stdout). */
export interface Output {
  json: boolean
  /** A result: JSON as is with --json, else the table or text `human` makes of it. */
  result(value: unknown, human: () => string): void
  /** Progress and notes: stderr, so stdout stays the result. */
  note(line: string): void
}

export function createOutput(json: boolean, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Output {
  return {
    json,
    result(value, human) {
      out.write(json ? `${JSON.stringify(value, null, 2)}\n` : ensureNewline(human()))
    },
    note(line) {
      if (!json) err.write(`${line}\n`)
    },
  }
}

const ensureNewline = (s: string) => (s === '' || s.endsWith('\n') ? s : `${s}\n`)

/** An aligned table; cells are strings (null and undefined print as "-"). */
export function table(headers: string[], rows: (string | number | boolean | null | undefined)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c))))]
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n'
}
