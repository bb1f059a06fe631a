import { describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { type ElementSpan, locateElements, scanJson, shiftSpans, spliceElement, withMembers } from '../../src/core/json-text.ts'
import { EXAMPLE_REGISTRY } from '../helpers/paths.ts'

const fullScan = (text: string) => {
	const scanned = scanJson(text)
	if (!scanned.ok) throw new Error(scanned.error.message)
	return scanned.elements
}

const SAMPLES: Record<string, string> = {
	'the example registry': readFileSync(EXAMPLE_REGISTRY, 'utf8'),
	'compact, one line': '[{"name":"a","backend":"x","n":1e-05},{"name":"b","backend":"y","z":[1,{"q":"}"}]}]',
	'escaped quotes and brackets in strings': '[\n  {\n    "name": "a\\"]}",\n    "k\\\\": "\\\\",\n    "v": "[{,}]"\n  }\n]\n',
	'tabs, CRLF and a byte order mark': '\ufeff[\r\n\t{\r\n\t\t"name": "a",\r\n\t\t"x": {"y": [1, 2]},\r\n\t\t"z": null\r\n\t}\r\n]\r\n',
	'empty objects and arrays': '[{}, {"a": {}, "b": []}, {"c": [[]], "d": {"e": {}}}]',
	'duplicate keys and unicode': '[{"name": "\u00e9\u{1F600}", "name": "x", "\\u0041": true}]',
	'NaN and Infinity (Python json)': '[{"name": "a", "x": NaN, "y": -Infinity, "z": Infinity}]'
}

describe('locateElements()', () => {
	for (const [label, text] of Object.entries(SAMPLES)) {
		test(`agrees with the full scanner: ${label}`, () => {
			expect(locateElements(text)).toEqual(fullScan(text))
		})
	}

	test('returns null when the top level is not an array', () => {
		expect(locateElements('{"a": [1, 2]}')).toBeNull()
	})
})

const bounds = (spans: readonly ElementSpan[]) => spans.map(({ start, end }) => ({ start, end }))

describe('shiftSpans()', () => {
	test('after a splice, equals a fresh scan of the new text (bounds of all, members of the changed one)', () => {
		const text = SAMPLES['the example registry'] as string
		const parsed = JSON.parse(text) as Record<string, unknown>[]
		const spans = fullScan(text) ?? []
		parsed.forEach((before, index) => {
			const after = { ...before, version_lock: { locked: true, expected_aggregate_sha256: 'a'.repeat(64) }, added: [1, { b: 'c' }] }
			const next = spliceElement(text, spans[index] as ElementSpan, { before, after })
			const shifted = shiftSpans(spans, index, next, next.length - text.length)
			const fresh = fullScan(next) ?? []
			expect(bounds(shifted)).toEqual(bounds(fresh))
			expect(shifted[index]).toEqual(fresh[index] as ElementSpan)
		})
	})
})

describe('withMembers()', () => {
	for (const [label, text] of Object.entries(SAMPLES)) {
		test(`locates one element's members as the full scanner does: ${label}`, () => {
			const fresh = fullScan(text) ?? []
			for (const span of fresh) expect(withMembers(text, { start: span.start, end: span.end, members: null })).toEqual(span)
		})
	}
})
