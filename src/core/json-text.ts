/**
 * @module
 * A strict JSON scanner that keeps the file's own text: where each top-level array element and each of
 * its members start and end, and where a malformed file first goes wrong (line and column).
 *
 * `JSON.parse` builds the values (it is the fast path); this scanner only runs when a file is malformed
 * (to say where) and when an entry is written back (to splice the new entry into the old text, so every
 * byte the write did not change stays as it was: untouched entries, key order, number spellings like
 * `1e-05`, escapes and indentation). It is iterative, so a 100k-deep file cannot overflow the stack.
 */

/** One member of an entry object: its key and where its raw value text sits. */
export interface MemberSpan {
	key: string
	keyStart: number
	valueStart: number
	valueEnd: number
}

/** One element of the top-level array: its raw text span and, for objects, its members. */
export interface ElementSpan {
	start: number
	end: number
	members: MemberSpan[] | null
}

/** Where and why a text is not JSON. */
export interface JsonSyntaxError {
	offset: number
	line: number
	column: number
	message: string
}

/**
 * The result of a scan: the top-level array's element spans and where the `NaN`/`Infinity`/`-Infinity`
 * literals are (Python's json module writes them, so imageworks registries may hold them), or the first
 * syntax error.
 */
export type ScanResult =
	| { ok: true; elements: ElementSpan[] | null; nonFinite: { start: number; end: number }[] }
	| { ok: false; error: JsonSyntaxError }

const ARRAY = 0
const OBJECT = 1

class SyntaxFault {
	constructor(
		readonly offset: number,
		readonly message: string
	) {}
}

/** Line and column (both 1-based) of `offset` in `text`. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
	let line = 1
	let lineStart = 0
	for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
		line++
		lineStart = i + 1
	}
	return { line, column: offset - lineStart + 1 }
}

/**
 * Scan `text` as strict JSON (RFC 8259), plus the `NaN`, `Infinity` and `-Infinity` literals that
 * Python's json module reads and writes. On success, `elements` holds the spans of the top-level
 * array's elements (null when the top level is not an array) and `nonFinite` the spans of those literals.
 */
export function scanJson(text: string): ScanResult {
	try {
		const nonFinite: { start: number; end: number }[] = []
		return { ok: true, elements: scan(text, nonFinite), nonFinite }
	} catch (fault) {
		if (!(fault instanceof SyntaxFault)) throw fault
		return { ok: false, error: { offset: fault.offset, ...lineColumn(text, fault.offset), message: fault.message } }
	}
}

function scan(text: string, nonFinite: { start: number; end: number }[]): ElementSpan[] | null {
	const n = text.length
	let i = text.charCodeAt(0) === 0xfeff ? 1 : 0 // a byte order mark is kept, not parsed
	const stack: number[] = []
	const elements: ElementSpan[] = []
	let topIsArray = false
	let element = null as ElementSpan | null
	let member = null as MemberSpan | null

	const ws = () => {
		while (i < n) {
			const c = text.charCodeAt(i)
			if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++
			else break
		}
	}
	const fail = (message: string, at = i): never => {
		throw new SyntaxFault(at, i >= n && at >= n ? 'Unexpected end of input: ' + message : message)
	}
	const string = () => {
		const start = i
		i++ // the opening quote
		for (;;) {
			if (i >= n) fail('unterminated string', start)
			const c = text.charCodeAt(i)
			if (c === 0x22) {
				i++
				return
			}
			if (c < 0x20) fail('invalid control character in a string (escape it)')
			if (c === 0x5c) {
				const e = text.charCodeAt(i + 1)
				if (e === 0x75) {
					if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail('invalid \\u escape')
					i += 6
				} else if (
					e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74
				) {
					i += 2
				} else fail('invalid escape in a string')
			} else i++
		}
	}
	const digits = () => {
		const start = i
		while (i < n && text.charCodeAt(i) >= 0x30 && text.charCodeAt(i) <= 0x39) i++
		return i - start
	}
	const number = () => {
		if (text.charCodeAt(i) === 0x2d) i++
		if (text.charCodeAt(i) === 0x30) i++
		else if (!digits()) fail('expecting a digit')
		if (text.charCodeAt(i) === 0x2e) {
			i++
			if (!digits()) fail('expecting a digit after the decimal point')
		}
		const e = text.charCodeAt(i)
		if (e === 0x65 || e === 0x45) {
			i++
			const s = text.charCodeAt(i)
			if (s === 0x2b || s === 0x2d) i++
			if (!digits()) fail('expecting a digit in the exponent')
		}
	}
	const key = () => {
		if (text.charCodeAt(i) !== 0x22) fail('expecting a property name in double quotes')
		const keyStart = i
		string()
		const keyEnd = i
		ws()
		if (text.charCodeAt(i) !== 0x3a) fail("expecting ':' after a property name")
		i++
		ws()
		if (element && stack.length === 2 && topIsArray) {
			member = { key: JSON.parse(text.slice(keyStart, keyEnd)) as string, keyStart, valueStart: i, valueEnd: i }
			element.members?.push(member)
		}
	}

	ws()
	for (;;) {
		// ---- a value starts at i
		ws()
		if (stack.length === 1 && topIsArray) {
			element = { start: i, end: i, members: text.charCodeAt(i) === 0x7b ? [] : null }
			elements.push(element)
			member = null
		}
		const c = text.charCodeAt(i)
		let closed = false
		if (c === 0x5b) {
			if (stack.length === 0) topIsArray = true
			stack.push(ARRAY)
			i++
			ws()
			if (text.charCodeAt(i) === 0x5d) {
				i++
				stack.pop()
				closed = true
			}
		} else if (c === 0x7b) {
			stack.push(OBJECT)
			i++
			ws()
			if (text.charCodeAt(i) === 0x7d) {
				i++
				stack.pop()
				closed = true
			} else key()
		} else if (c === 0x22) {
			string()
			closed = true
		} else if (text.startsWith('NaN', i) || text.startsWith('Infinity', i) || text.startsWith('-Infinity', i)) {
			const length = c === 0x4e ? 3 : c === 0x49 ? 8 : 9
			nonFinite.push({ start: i, end: i + length })
			i += length
			closed = true
		} else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
			number()
			closed = true
		} else if (text.startsWith('true', i)) {
			i += 4
			closed = true
		} else if (text.startsWith('false', i)) {
			i += 5
			closed = true
		} else if (text.startsWith('null', i)) {
			i += 4
			closed = true
		} else fail('expecting a value')
		if (!closed) continue

		// ---- a value just ended at i: close containers until the next value starts
		for (;;) {
			if (stack.length === 0) {
				ws()
				if (i < n) fail('extra data after the end of the JSON value')
				return topIsArray ? elements : null
			}
			if (stack.length === 1 && topIsArray && element) element.end = i
			if (stack.length === 2 && topIsArray && member) member.valueEnd = i
			ws()
			const top = stack[stack.length - 1]
			const d = text.charCodeAt(i)
			if (d === 0x2c) {
				i++
				ws()
				if (top === OBJECT) key()
				break
			}
			if (top === ARRAY && d === 0x5d) {
				i++
				stack.pop()
				continue
			}
			if (top === OBJECT && d === 0x7d) {
				i++
				stack.pop()
				continue
			}
			fail(top === ARRAY ? "expecting ',' or ']'" : "expecting ',' or '}'")
		}
	}
}

/**
 * The spans of the top-level array's elements in `text`, which must be valid JSON (it parsed): a
 * structural pass that only looks at brackets and commas, and jumps over strings with `indexOf`, about ten times faster than {@link scanJson}'s full check. Returns null when
 * the top level is not an array.
 */
export function locateElements(text: string): ElementSpan[] | null {
	const elements: ElementSpan[] = []
	let depth = 0
	let topIsArray = false
	let element: ElementSpan | null = null
	let member: MemberSpan | null = null
	let expectKey = false // at depth 2 in an object element: the next string is a key
	const startAt = (from: number) => {
		let i = from
		while (i < text.length) {
			const c = text.charCodeAt(i)
			if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++
			else break
		}
		return i
	}
	const endAt = (upTo: number) => {
		let i = upTo
		while (i > 0) {
			const c = text.charCodeAt(i - 1)
			if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i--
			else break
		}
		return i
	}
	const n = text.length
	for (let i = 0; i < n; i++) {
		const c = text.charCodeAt(i)
		if (c === 0x22) {
			let j = text.indexOf('"', i + 1)
			for (;;) {
				let backslashes = 0
				while (text.charCodeAt(j - 1 - backslashes) === 0x5c) backslashes++
				if (backslashes % 2 === 0) break
				j = text.indexOf('"', j + 1)
			}
			if (depth === 2 && expectKey && element?.members) {
				const colon = text.indexOf(':', j + 1)
				const raw = text.slice(i + 1, j)
				const key = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw
				member = { key, keyStart: i, valueStart: startAt(colon + 1), valueEnd: 0 }
				element.members.push(member)
				expectKey = false
			}
			i = j
		} else if (c === 0x5b || c === 0x7b) {
			if (depth === 0) topIsArray = c === 0x5b
			depth++
			if (depth === 2 && topIsArray) {
				element = { start: i, end: 0, members: c === 0x7b ? [] : null }
				elements.push(element)
				member = null
				expectKey = c === 0x7b
			}
		} else if (c === 0x5d || c === 0x7d) {
			if (depth === 2 && member) member.valueEnd = endAt(i)
			if (depth === 2 && element) element.end = i + 1
			depth--
		} else if (c === 0x2c && depth === 2 && member) {
			member.valueEnd = endAt(i)
			expectKey = true
		}
	}
	if (!topIsArray) return null
	return elements
}

/**
 * The spans of `text` after {@link spliceElement} replaced element `index` of `spans` and changed the text's
 * length by `delta`: earlier elements stay, the new element is located again, later ones shift. A server
 * writing to a large registry then never rescans the whole file.
 */
export function shiftSpans(spans: readonly ElementSpan[], index: number, text: string, delta: number): ElementSpan[] {
	const old = spans[index] as ElementSpan
	const replaced = withMembers(text, { start: old.start, end: old.end + delta, members: null })
	// Later elements keep only their bounds: a write locates the members of the one element it changes.
	return spans.map((span, i) => (i < index ? span : i === index ? replaced : { start: span.start + delta, end: span.end + delta, members: null }))
}

/** `span`, an element of `text`, located again with its members: a scan of that one element only. */
export function withMembers(text: string, span: ElementSpan): ElementSpan {
	const located = locateElements(`[${text.slice(span.start, span.end)}]`)?.[0]
	if (!located) return { ...span, members: null }
	const by = span.start - 1
	return {
		start: located.start + by,
		end: located.end + by,
		members: located.members?.map((m) => ({ ...m, keyStart: m.keyStart + by, valueStart: m.valueStart + by, valueEnd: m.valueEnd + by })) ?? null
	}
}

/** Options for {@link spliceElement}. */
export interface SpliceOptions {
	/** The element's value as it was parsed from `text` (to tell which members changed). */
	before: Record<string, unknown>
	/** The element's new value. */
	after: Record<string, unknown>
}

/**
 * `text` with the object element at `span` replaced by `after`, changing only what changed: members whose
 * value is unchanged keep their exact text, key order follows the file (new keys go last), and changed
 * values are written in the file's own indentation.
 */
export function spliceElement(text: string, span: ElementSpan, options: SpliceOptions): string {
	return text.slice(0, span.start) + renderElement(text, span, options) + text.slice(span.end)
}

function renderElement(text: string, span: ElementSpan, { before, after }: SpliceOptions): string {
	const original = text.slice(span.start, span.end)
	const members = span.members ?? []
	const multiline = original.includes('\n')
	const nl = original.includes('\r\n') ? '\r\n' : '\n' // a CRLF file stays CRLF
	const lineStart = text.lastIndexOf('\n', span.start - 1) + 1
	const outerIndent = leadingWhitespace(text.slice(lineStart, span.start))
	const first = members[0]
	let indent = outerIndent + '  '
	if (multiline && first) {
		const keyLine = text.lastIndexOf('\n', first.keyStart - 1) + 1
		if (keyLine > span.start) indent = leadingWhitespace(text.slice(keyLine, first.keyStart))
	}
	const unit = indent.startsWith(outerIndent) && indent.length > outerIndent.length ? indent.slice(outerIndent.length) : '  '
	const render = (value: unknown) =>
		multiline ? JSON.stringify(value, null, unit).replaceAll('\n', nl + indent) : compact(value)

	// A key written twice has the value of its last occurrence (as JSON.parse and Python read it).
	const last = new Map<string, MemberSpan>()
	for (const m of members) last.set(m.key, m)
	const seen = new Set<string>()
	const parts: string[] = []
	for (const m of members) {
		if (!Object.hasOwn(after, m.key)) continue
		const head = text.slice(m.keyStart, m.valueStart) // the key and separator, as written
		if (last.get(m.key) !== m) {
			parts.push(head + text.slice(m.valueStart, m.valueEnd)) // an earlier duplicate, ignored by readers: kept as written
			continue
		}
		seen.add(m.key)
		const unchanged = Object.hasOwn(before, m.key) && sameJson(before[m.key], after[m.key])
		parts.push(head + (unchanged ? text.slice(m.valueStart, m.valueEnd) : render(after[m.key])))
	}
	for (const [key, value] of Object.entries(after)) {
		if (seen.has(key) || value === undefined) continue
		parts.push(`${JSON.stringify(key)}: ${render(value)}`)
	}
	if (!parts.length) return '{}'
	if (!multiline) return `{${parts.join(', ')}}`
	return `{${nl}${indent}${parts.join(`,${nl}${indent}`)}${nl}${outerIndent}}`
}

function leadingWhitespace(s: string): string {
	return /^[ \t]*$/.test(s) ? s : (/^[ \t]*/.exec(s)?.[0] ?? '')
}

/** One-line JSON with ", " and ": " separators (Python's default, which imageworks files use). */
function compact(value: unknown): string {
	if (Array.isArray(value)) return `[${value.map(compact).join(', ')}]`
	if (value !== null && typeof value === 'object') {
		const body = Object.entries(value as Record<string, unknown>)
			.filter(([, v]) => v !== undefined)
			.map(([k, v]) => `${JSON.stringify(k)}: ${compact(v)}`)
		return `{${body.join(', ')}}`
	}
	return JSON.stringify(value) ?? 'null'
}

/** Structural equality of two JSON values. */
export function sameJson(a: unknown, b: unknown): boolean {
	if (a === b) return true
	if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
	if (Array.isArray(a) !== Array.isArray(b)) return false
	if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, k) => sameJson(v, b[k]))
	const ka = Object.keys(a)
	const kb = Object.keys(b)
	if (ka.length !== kb.length) return false
	return ka.every(
		(k) => Object.hasOwn(b, k) && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])
	)
}
