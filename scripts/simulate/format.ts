/**
 * Numbers as the doc writes them: fixed decimals and thousands separators,
 * computed here rather than by Intl, so that the text cannot vary with the
 * machine's locale data.
 */
export function formatNumber(value: number, digits = 0): string {
	if (!Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
	const fixed = Math.abs(value).toFixed(digits);
	const [whole = "", fraction] = fixed.split(".");
	const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
	const sign = value < 0 && Number(fixed) !== 0 ? "-" : "";
	return fraction === undefined ? `${sign}${grouped}` : `${sign}${grouped}.${fraction}`;
}

/** A Markdown table, one line per row, cells padded by one space. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
	const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
	return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}
