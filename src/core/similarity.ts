/**
 * @module
 * How alike two strings are, for "did you mean" suggestions. Pure and dependency-free, so the CLI can
 * suggest commands without loading the rest of the core.
 */

/** Ratcliff/Obershelp similarity (Python's difflib ratio): 2 * matching characters / total length. */
export function similarity(a: string, b: string): number {
	const total = a.length + b.length
	if (!total) return 1
	if ((2 * Math.min(a.length, b.length)) / total < 0.6) return 0 // cannot reach the cut-off
	return (2 * matching(a, b)) / total
}

function matching(a: string, b: string): number {
	if (!a.length || !b.length) return 0
	let best = 0
	let bi = 0
	let bj = 0
	let prev = new Uint16Array(b.length + 1)
	let row = new Uint16Array(b.length + 1)
	for (let i = 1; i <= a.length; i++) {
		for (let j = 1; j <= b.length; j++) {
			const v = a[i - 1] === b[j - 1] ? (prev[j - 1] as number) + 1 : 0
			row[j] = v
			if (v > best) {
				best = v
				bi = i - v
				bj = j - v
			}
		}
		;[prev, row] = [row, prev]
	}
	if (!best) return 0
	return best + matching(a.slice(0, bi), b.slice(0, bj)) + matching(a.slice(bi + best), b.slice(bj + best))
}
