/** Port of tests/test_capabilities.py: canonical names, synonyms, normalisation, required lists. */
import { describe, expect, test } from 'bun:test'
import {
	CANONICAL,
	acceptedCapabilityNames,
	canonicalName,
	missingCapabilities,
	normaliseCapabilities,
	parseRequired
} from '../../src/core/capabilities.ts'
import { RequestError, UnknownCapability } from '../../src/core/errors.ts'
import { caught } from '../helpers/errors.ts'

describe('canonicalName()', () => {
	test.each([
		['vision', 'vision'],
		['VISION', 'vision'],
		['image', 'vision'],
		['Multimodal', 'vision'],
		['vl', 'vision'],
		['function_calling', 'tools'],
		['function-calling', 'tools'],
		['tool_use', 'tools'],
		['Tools', 'tools'],
		['reasoning', 'thinking'],
		['chain_of_thought', 'thinking'],
		['embed', 'embedding'],
		['text-embedding', 'embedding'],
		['speech', 'audio'],
		['chat', 'text'],
		['rerank', undefined],
		['o1', undefined]
	] as const)('maps %p to %p, in any case and with any separator', (given, canon) => {
		expect(canonicalName(given)).toBe(canon)
	})

	test('every accepted name maps to a canonical name', () => {
		const names = acceptedCapabilityNames()
		expect(names).toContain('multimodal')
		for (const name of names) expect(CANONICAL).toContain(canonicalName(name) as (typeof CANONICAL)[number])
	})
})

describe('normaliseCapabilities()', () => {
	test('outputs only the canonical names, in order, with text defaulting to true', () => {
		const caps = normaliseCapabilities({ image: true, function_calling: true, o1: false, deepseek: true })
		expect(Object.keys(caps)).toEqual([...CANONICAL])
		expect(caps).toEqual({ text: true, vision: true, audio: false, embedding: false, tools: true, thinking: false })
	})

	test('an explicit canonical key wins over its synonyms', () => {
		// imageworks writes every synonym; an explicit canonical false is authoritative.
		expect(normaliseCapabilities({ vision: false, vl: true }).vision).toBe(false)
		expect(normaliseCapabilities({ vl: true, vision: false }).vision).toBe(false)
		expect(normaliseCapabilities({ text: false }).text).toBe(false)
		expect(normaliseCapabilities({}).text).toBe(true)
		expect(normaliseCapabilities(null).text).toBe(true)
		expect(normaliseCapabilities(undefined).text).toBe(true)
	})

	test('a null value is "not said": it neither sets nor clears', () => {
		expect(normaliseCapabilities({ vision: null, vl: true }).vision).toBe(true)
		expect(normaliseCapabilities({ text: null }).text).toBe(true)
	})
})

describe('parseRequired()', () => {
	test('canonicalises, removes duplicates and keeps the canonical order', () => {
		expect(parseRequired(['image', 'VISION', 'function_calling'])).toEqual(['vision', 'tools'])
		expect(parseRequired(['tools', 'vision'])).toEqual(['vision', 'tools'])
		expect(parseRequired([])).toEqual([])
	})

	test('names every unknown capability at once, and the known ones', () => {
		const err = caught(UnknownCapability, () => parseRequired(['vision', 'rerank', 'telepathy']))
		expect(err).toBeInstanceOf(RequestError)
		expect(err.capabilities).toEqual(['rerank', 'telepathy'])
		expect(err.code).toBe('unknown_capability')
		expect(err.message).toBe(
			'Unknown capabilities: rerank, telepathy. Known: audio, embedding, text, thinking, tools, vision'
		)
	})
})

describe('missingCapabilities()', () => {
	test('lists every gap, in the order asked', () => {
		const caps = normaliseCapabilities({ text: true })
		expect(missingCapabilities(caps, ['vision', 'tools'])).toEqual(['vision', 'tools'])
		expect(missingCapabilities(caps, ['text'])).toEqual([])
	})
})
