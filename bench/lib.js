// Shared by the benchmark scripts.

/** A cli-table3 table of `rows` (tab-separated text when cli-table3 cannot be loaded). */
export async function table(head, rows) {
  try {
    const {default: Table} = await import('cli-table3')
    const t = new Table({head, style: {head: [], border: []}})
    for (const r of rows) t.push(r)
    return t.toString()
  } catch {
    return [head, ...rows].map((r) => r.join('\t')).join('\n')
  }
}
