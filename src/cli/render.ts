/** How wide a table may be: $COLUMNS when set, else the terminal's width; null (any width) when piped. */
export function terminalWidth(env: NodeJS.ProcessEnv = process.env, stdout: { isTTY?: boolean; columns?: number } = process.stdout): number | null {
  const columns = env['COLUMNS'];
  if (columns !== undefined && /^\d+$/.test(columns) && Number(columns) > 0) return Number(columns);
  return stdout.isTTY && stdout.columns !== undefined && stdout.columns > 0 ? stdout.columns : null;
}

/** The narrowest a shrunk column gets. */
const MIN_SHRUNK = 12;

/**
 * Renders rows as an aligned table, like lspci/kubectl: a header line, then one line a row. With a
 * `fit` width, the `shrink` column (a name) is cut short, ending in "…", so each line fits.
 */
export function renderTable(
  headers: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string>>,
  fit: { readonly width: number | null; readonly shrink: number } = { width: null, shrink: -1 },
): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const total = widths.reduce((sum, width) => sum + width, 0) + 2 * (widths.length - 1);
  if (fit.width !== null && fit.shrink >= 0 && total > fit.width && widths[fit.shrink] !== undefined) {
    const room = Math.max(MIN_SHRUNK, headers[fit.shrink]!.length, widths[fit.shrink]! - (total - fit.width));
    if (room < widths[fit.shrink]!) {
      widths[fit.shrink] = room;
      const cut = (cell: string): string => (cell.length > room ? `${cell.slice(0, room - 1)}…` : cell);
      rows = rows.map((row) => row.map((cell, column) => (column === fit.shrink ? cut(cell) : cell)));
    }
  }
  const line = (cells: ReadonlyArray<string>): string =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function orDash(value: string | number | null | undefined): string {
  return value === null || value === undefined || value === '' ? '-' : String(value);
}
