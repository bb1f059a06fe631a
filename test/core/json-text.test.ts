/**
 * src/core/json-text.ts: where a malformed file goes wrong, the spans of entries and members, and
 * splicing a changed entry into the old text so every byte the write did not change stays as it was.
 */
import { describe, expect, test } from 'bun:test'
import { RegistryInvalid } from '../../src/core/errors.ts'
import { type ElementSpan, lineColumn, sameJson, scanJson, spliceElement } from '../../src/core/json-text.ts'
import { MAX_DEPTH, parseRegistry } from '../../src/core/registry.ts'
import { caught } from '../helpers/errors.ts'

/** The spans of a text that must scan. */
function spans(text: string): ElementSpan[] {
	const scanned = scanJson(text)
	if (!scanned.ok) throw new Error(`did not scan: ${JSON.stringify(scanned.error)}`)
	if (!scanned.elements) throw new Error('top level is not an array')
	return scanned.elements
}

/** The first syntax error of a text that must not scan. */
function syntaxError(text: string) {
	const scanned = scanJson(text)
	if (scanned.ok) throw new Error(`scanned, but should not have: ${JSON.stringify(text)}`)
	return scanned.error
}

/**
 * Change element `index` of `text` the way the store does: parse it, let `change` edit a copy, splice.
 * Returns the new text.
 */
function edit(text: string, index: number, change: (entry: Record<string, unknown>) => void): string {
	const values = JSON.parse(text) as Record<string, unknown>[]
	const before = values[index] as Record<string, unknown>
	const after = structuredClone(before)
	change(after)
	const span = spans(text)[index] as ElementSpan
	const result = spliceElement(text, span, { before, after })
	expect(JSON.parse(result)[index]).toEqual(after) // the new text holds exactly the new value
	return result
}

/** The text of every element but `index`, in order. */
function othersText(text: string, index: number): string[] {
	return spans(text)
		.filter((_, k) => k !== index)
		.map((s) => text.slice(s.start, s.end))
}

describe('lineColumn()', () => {
	test('counts lines and columns from 1', () => {
		const text = 'ab\ncd\n\nef'
		expect(lineColumn(text, 0)).toEqual({ line: 1, column: 1 })
		expect(lineColumn(text, 1)).toEqual({ line: 1, column: 2 })
		expect(lineColumn(text, 2)).toEqual({ line: 1, column: 3 }) // the newline itself ends line 1
		expect(lineColumn(text, 3)).toEqual({ line: 2, column: 1 })
		expect(lineColumn(text, 7)).toEqual({ line: 4, column: 1 })
		expect(lineColumn(text, text.length)).toEqual({ line: 4, column: 3 })
	})
})

describe('scanJson() errors', () => {
	test.each([
		['a missing comma between members', '[\n  {"name": "a", "backend": "vllm"},\n  {"name": "b" "backend": "vllm"}\n]\n', 3, 16, "expecting ',' or '}'"],
		['a trailing comma in an array', '[\n  {"name": "a"},\n]', 3, 1, 'expecting a value'],
		['a trailing comma in an object', '[{"name": "a",}]', 1, 15, 'expecting a property name in double quotes'],
		['an unquoted key', '[\n\t{name: "a"}\n]', 2, 3, 'expecting a property name in double quotes'],
		['single quotes', "[{'name': 'a'}]", 1, 3, 'expecting a property name in double quotes'],
		['a missing colon', '[{"name" "a"}]', 1, 10, "expecting ':' after a property name"],
		['a raw newline inside a string', '[{"name": "a\nb"}]', 1, 13, 'invalid control character in a string (escape it)'],
		['an unknown escape', '[{"name": "a\\xb"}]', 1, 13, 'invalid escape in a string'],
		['a short \\u escape', '[{"name": "\\u12g4"}]', 1, 12, 'invalid \\u escape'],
		['a leading zero', '[01]', 1, 3, "expecting ',' or ']'"],
		['a bare minus', '[-]', 1, 3, 'expecting a digit'],
		['a number ending in a point', '[1.]', 1, 4, 'expecting a digit after the decimal point'],
		['an exponent without digits', '[1e+]', 1, 5, 'expecting a digit in the exponent'],
		['a misspelt literal', '[tru]', 1, 2, 'expecting a value'],
		['a comment', '[\n  // note\n  1\n]', 2, 3, 'expecting a value'],
		['extra data after the array', '[1]\n[2]', 2, 1, 'extra data after the end of the JSON value'],
		['a mismatched bracket', '[{"a": [1}]', 1, 10, "expecting ',' or ']'"],
		['CRLF line endings', '[\r\n  1,\r\n  2\r\n  3\r\n]', 4, 3, "expecting ',' or ']'"]
	] as const)('%s', (_what, text, line, column, message) => {
		expect(syntaxError(text)).toEqual({ offset: expect.any(Number), line, column, message })
		expect(() => JSON.parse(text)).toThrow() // the scanner agrees with the real parser
	})

	test.each([
		['empty input', '', 1, 1, 'Unexpected end of input: expecting a value'],
		['only whitespace', '  \n ', 2, 2, 'Unexpected end of input: expecting a value'],
		['an unclosed array', '[\n  {"name": "a"}', 2, 16, "Unexpected end of input: expecting ',' or ']'"],
		['an unclosed object', '[{"name": "a"', 1, 14, "Unexpected end of input: expecting ',' or '}'"],
		['a cut-off key', '[{"na', 1, 3, 'unterminated string']
	] as const)('truncated input: %s', (_what, text, line, column, message) => {
		expect(syntaxError(text)).toEqual({ offset: expect.any(Number), line, column, message })
	})

	test('the offset, line and column point at the same character', () => {
		const text = '[\n  {"a": 1},\n  {"b": 2,, "c": 3}\n]'
		const error = syntaxError(text)
		expect(text[error.offset]).toBe(',')
		expect(error).toEqual({ offset: text.indexOf(',,') + 1, line: 3, column: 11, message: 'expecting a property name in double quotes' })
	})

	test('a byte order mark is skipped, not an error', () => {
		const scanned = scanJson('\ufeff[{"name": "a"}]')
		expect(scanned.ok).toBe(true)
	})

	test('agrees with JSON.parse on every one-character corruption of a registry', () => {
		const text = JSON.stringify([{ name: 'a', backend: 'vllm', x: [1, -2.5e-3, true, null, 'q"\\é'], y: {} }], null, 2)
		const replacements = ['', '"', ',', ':', '{', '}', '[', ']', 'x', '0', '-', '\\', ' ', '\n', 'e']
		let tried = 0
		for (let i = 0; i < text.length; i++) {
			for (const r of replacements) {
				const broken = text.slice(0, i) + r + text.slice(i + 1)
				let parses = true
				try {
					JSON.parse(broken)
				} catch {
					parses = false
				}
				expect({ broken, ok: scanJson(broken).ok }).toEqual({ broken, ok: parses })
				tried++
			}
		}
		expect(tried).toBeGreaterThan(1000)
	})
})

describe('scanJson() spans', () => {
	test('gives each element of the top-level array and each member of an object element', () => {
		const text = '[\n  {"name": "a", "n": [1, {"x": 2}], "s": "}]"},\n  42,\n  "str",\n  {}\n]'
		const elements = spans(text)
		expect(elements.map((e) => text.slice(e.start, e.end))).toEqual([
			'{"name": "a", "n": [1, {"x": 2}], "s": "}]"}',
			'42',
			'"str"',
			'{}'
		])
		expect(elements.map((e) => e.members === null)).toEqual([false, true, true, false])
		const first = elements[0] as ElementSpan
		expect(
			first.members?.map((m) => ({ key: m.key, head: text.slice(m.keyStart, m.valueStart), value: text.slice(m.valueStart, m.valueEnd) }))
		).toEqual([
			{ key: 'name', head: '"name": ', value: '"a"' },
			{ key: 'n', head: '"n": ', value: '[1, {"x": 2}]' },
			{ key: 's', head: '"s": ', value: '"}]"' }
		])
		expect(elements[3]?.members).toEqual([])
	})

	test('decodes escaped keys and keeps the whitespace around the colon in the head', () => {
		const text = '[{"na\\u006de" :\t"a", "\\"q\\"": 1}]'
		const members = spans(text)[0]?.members ?? []
		expect(members.map((m) => m.key)).toEqual(['name', '"q"'])
		expect(text.slice(members[0]?.keyStart, members[0]?.valueStart)).toBe('"na\\u006de" :\t')
	})

	test('a top level that is not an array has no element spans', () => {
		expect(scanJson('{"name": "a"}')).toEqual({ ok: true, elements: null, nonFinite: [] })
		expect(scanJson('"text"')).toEqual({ ok: true, elements: null, nonFinite: [] })
		expect(scanJson('[]')).toEqual({ ok: true, elements: [], nonFinite: [] })
	})

	test('finds the NaN and Infinity literals Python writes', () => {
		const text = '[{"a": NaN, "b": [Infinity, -Infinity], "c": "NaN"}]'
		const scanned = scanJson(text)
		if (!scanned.ok) throw new Error('did not scan')
		expect(scanned.nonFinite.map((s) => text.slice(s.start, s.end))).toEqual(['NaN', 'Infinity', '-Infinity'])
		expect(syntaxError('[nan]').message).toBe('expecting a value')
		expect(syntaxError('[-NaN]').message).toBe('expecting a digit')
	})

	test('a 100k-deep nested array is scanned without a stack overflow, and refused as a registry', () => {
		const depth = 100_000
		const valid = '['.repeat(depth) + ']'.repeat(depth)
		expect(spans(valid).length).toBe(1)
		expect(syntaxError('['.repeat(depth))).toEqual({
			offset: depth,
			line: 1,
			column: depth + 1,
			message: 'Unexpected end of input: expecting a value'
		})
		const unbalanced = '['.repeat(depth) + ']'.repeat(depth - 1) + '}'
		expect(syntaxError(unbalanced).message).toBe("expecting ',' or ']'")

		const asEntry = caught(RegistryInvalid, () => parseRegistry(valid, 'deep.json'))
		expect(asEntry.problems).toEqual(['entry 0: must be a JSON object, found an array'])
		const inField = `[{"name": "a", "backend": "vllm", "metadata": {"deep": ${valid}}}]`
		const deep = caught(RegistryInvalid, () => parseRegistry(inField, 'deep.json'))
		expect(deep.problems).toEqual([`entry 0 ("a"): field metadata: nested more than ${MAX_DEPTH} levels deep; make it shallower`])
		expect(deep.message).toStartWith('Registry deep.json is invalid (1 problem); nothing was changed. Fix the file and retry:')
	})

	test('values up to the depth limit are fine', () => {
		// the entry is level 1, metadata level 2, so metadata may hold MAX_DEPTH - 2 more levels
		const nest = (k: number) => `[{"name": "a", "backend": "vllm", "metadata": {"d": ${'['.repeat(k)}${']'.repeat(k)}}}]`
		expect(parseRegistry(nest(MAX_DEPTH - 2), 'r.json').entries.length).toBe(1)
		expect(caught(RegistryInvalid, () => parseRegistry(nest(MAX_DEPTH - 1), 'r.json')).problems).toEqual([
			`entry 0 ("a"): field metadata: nested more than ${MAX_DEPTH} levels deep; make it shallower`
		])
	})
})

describe('spliceElement()', () => {
	// Entries as imageworks and people write them: 1e-05, escapes, unknown fields, odd key order,
	// integer-like keys, other indentations, and a compact one-line entry.
	const TEXT = [
		'[',
		'  {',
		'    "name": "first",',
		'    "backend": "vllm",',
		'    "generation_defaults": {"temperature": 1e-05, "top_p": 0.90, "big": 123456789012345678901234567890},',
		'    "display_name": "caf\\u00e9 \\ud83d\\ude00 \\/ \\"q\\"",',
		'    "x-unknown": {"b": 1, "a": [1.0, 2E3, -0]},',
		'    "role_priority": {"10": 1, "2": 2, "b": 3}',
		'  },',
		'  {',
		'      "backend": "ollama",',
		'      "name": "four-spaces",',
		'      "version_lock": {',
		'          "locked": false,',
		'          "expected_aggregate_sha256": null',
		'      },',
		'      "roles": ["caption"]',
		'  },',
		'\t{',
		'\t\t"name": "tabs",',
		'\t\t"backend": "llamacpp",',
		'\t\t"capabilities": {"vision": true}',
		'\t},',
		'  {"name": "compact", "backend": "vllm", "version_lock": {"locked": false}, "n": 1e-05},',
		'  {"backend": "vllm", "name": "last", "deprecated": false}',
		']',
		''
	].join('\n')

	test('the fixture scans and parses', () => {
		expect(spans(TEXT).length).toBe(5)
		expect(parseRegistry(TEXT, 'r.json').entries.map((e) => e.name)).toEqual(['first', 'four-spaces', 'tabs', 'compact', 'last'])
	})

	test('an unchanged entry is written back byte for byte', () => {
		for (let i = 0; i < 5; i++) expect(edit(TEXT, i, () => undefined)).toBe(TEXT)
	})

	test('changing one entry leaves every other entry, and the text between them, byte-identical', () => {
		for (let i = 0; i < 5; i++) {
			const after = edit(TEXT, i, (e) => {
				e['deprecated'] = true
			})
			expect(othersText(after, i)).toEqual(othersText(TEXT, i))
			const span = spans(TEXT)[i] as ElementSpan
			const newSpan = spans(after)[i] as ElementSpan
			expect(after.slice(0, newSpan.start)).toBe(TEXT.slice(0, span.start))
			expect(after.slice(newSpan.end)).toBe(TEXT.slice(span.end))
		}
	})

	test('unchanged members of the changed entry keep their exact text (numbers, escapes, key order)', () => {
		const after = edit(TEXT, 0, (e) => {
			e['backend'] = 'lmdeploy'
		})
		const entryText = after.slice(spans(after)[0]?.start, spans(after)[0]?.end)
		expect(entryText).toBe(
			[
				'{',
				'    "name": "first",',
				'    "backend": "lmdeploy",',
				'    "generation_defaults": {"temperature": 1e-05, "top_p": 0.90, "big": 123456789012345678901234567890},',
				'    "display_name": "caf\\u00e9 \\ud83d\\ude00 \\/ \\"q\\"",',
				'    "x-unknown": {"b": 1, "a": [1.0, 2E3, -0]},',
				'    "role_priority": {"10": 1, "2": 2, "b": 3}',
				'  }'
			].join('\n')
		)
	})

	test('a changed member is rewritten in the indentation of its entry, and a new key goes last', () => {
		const after = edit(TEXT, 1, (e) => {
			;(e['version_lock'] as Record<string, unknown>)['locked'] = true
			e['artifacts'] = { aggregate_sha256: '', files: [{ path: 'a', sha256: '' }] }
		})
		expect(after.slice(spans(after)[1]?.start, spans(after)[1]?.end)).toBe(
			[
				'{',
				'      "backend": "ollama",',
				'      "name": "four-spaces",',
				'      "version_lock": {',
				'          "locked": true,',
				'          "expected_aggregate_sha256": null',
				'      },',
				'      "roles": ["caption"],',
				'      "artifacts": {',
				'          "aggregate_sha256": "",',
				'          "files": [',
				'              {',
				'                  "path": "a",',
				'                  "sha256": ""',
				'              }',
				'          ]',
				'      }',
				'  }'
			].join('\n')
		)
	})

	test('tab indentation is kept for rewritten and new members', () => {
		const after = edit(TEXT, 2, (e) => {
			e['capabilities'] = { vision: true, tools: true }
			e['roles'] = ['caption']
		})
		expect(after.slice(spans(after)[2]?.start, spans(after)[2]?.end)).toBe(
			[
				'{',
				'\t\t"name": "tabs",',
				'\t\t"backend": "llamacpp",',
				'\t\t"capabilities": {',
				'\t\t\t"vision": true,',
				'\t\t\t"tools": true',
				'\t\t},',
				'\t\t"roles": [',
				'\t\t\t"caption"',
				'\t\t]',
				'\t}'
			].join('\n')
		)
	})

	test('a compact one-line entry stays on one line', () => {
		const after = edit(TEXT, 3, (e) => {
			;(e['version_lock'] as Record<string, unknown>)['locked'] = true
			e['probes'] = { vision: { vision_ok: true, notes: ['a', 'b'] } }
		})
		expect(after.slice(spans(after)[3]?.start, spans(after)[3]?.end)).toBe(
			'{"name": "compact", "backend": "vllm", "version_lock": {"locked": true}, "n": 1e-05, ' +
				'"probes": {"vision": {"vision_ok": true, "notes": ["a", "b"]}}}'
		)
	})

	test('a removed key disappears and the remaining members keep their text', () => {
		const after = edit(TEXT, 4, (e) => {
			delete e['deprecated']
		})
		expect(after.slice(spans(after)[4]?.start, spans(after)[4]?.end)).toBe('{"backend": "vllm", "name": "last"}')
		const emptied = edit('[{"name": "a"}]', 0, (e) => {
			delete e['name']
		})
		expect(emptied).toBe('[{}]')
	})

	test('a key written twice keeps the value readers see (the last one) through an unrelated write', () => {
		const text = '[{"name": "a", "x": 1, "backend": "vllm", "x": 2}]'
		expect(
			edit(text, 0, (e) => {
				e['deprecated'] = true
			})
		).toBe('[{"name": "a", "x": 1, "backend": "vllm", "x": 2, "deprecated": true}]')
		expect(
			edit(text, 0, (e) => {
				e['x'] = 3
			})
		).toBe('[{"name": "a", "x": 1, "backend": "vllm", "x": 3}]')
		expect(
			edit(text, 0, (e) => {
				delete e['x']
			})
		).toBe('[{"name": "a", "backend": "vllm"}]')
	})

	test('a member whose value is equal but spelled differently is left alone', () => {
		// 1e-05 and 0.00001 are the same number: no change, so the file's spelling stays
		const text = '[{"name": "a", "t": 1e-05, "u": "\\u00e9"}]'
		const after = edit(text, 0, (e) => {
			e['t'] = 0.00001
			e['u'] = 'é'
		})
		expect(after).toBe(text)
	})

	test('a NaN read as null is written back as it was when its member is unchanged', () => {
		const text = '[{"name": "a", "backend": "vllm", "metadata": {"score": NaN}}]'
		const registry = parseRegistry(text, 'r.json')
		const before = registry.entries[0] as unknown as Record<string, unknown>
		expect(before['metadata']).toEqual({ score: null })
		const after = structuredClone(before)
		after['deprecated'] = true
		expect(spliceElement(text, spans(text)[0] as ElementSpan, { before, after })).toBe(
			'[{"name": "a", "backend": "vllm", "metadata": {"score": NaN}, "deprecated": true}]'
		)
	})
})

describe('sameJson()', () => {
	test('compares JSON values structurally, ignoring key order', () => {
		expect(sameJson({ a: 1, b: [1, { c: null }] }, { b: [1, { c: null }], a: 1 })).toBe(true)
		expect(sameJson({ a: 1 }, { a: 1, b: undefined })).toBe(false)
		expect(sameJson([1, 2], [2, 1])).toBe(false)
		expect(sameJson([], {})).toBe(false)
		expect(sameJson(null, {})).toBe(false)
		expect(sameJson('1', 1)).toBe(false)
	})
})
