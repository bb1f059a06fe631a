/** The vision probe against the reference backend: a model that sees is verified, everything else is not. */
import { describe, expect, test } from 'bun:test'
import { BackendClient } from '../../src/core/openai.ts'
import { CHALLENGE_QUESTION, PALETTE, SHAPES, challengeImage, namedColours, runVisionProbe, type ProbeRun } from '../../src/core/probe.ts'
import { seeded } from '../helpers/images.ts'
import { type Behaviour, type ReferenceBackend, deadPort, decodePng, dominantColourName, referenceBackend } from '../helpers/reference-backend.ts'

const TIMESTAMP = '2025-01-01T00:00:00+00:00'

/** Probe the reference backend in `behaviour` with a `timeout`-second client. */
async function probe(behaviour: Partial<Behaviour>, timeout = 5): Promise<{ run: ProbeRun; ref: ReferenceBackend }> {
	await using ref = referenceBackend(behaviour)
	const client = new BackendClient(ref.endpoint, { timeout })
	const run = await runVisionProbe(client, { name: 'm', modelId: 'ref-model', random: seeded(7), timestamp: TIMESTAMP })
	return { run, ref }
}

describe('namedColours()', () => {
	test.each([
		['Red.', ['red']],
		['The shape is RED', ['red']],
		['reddish', []],
		['shared', []],
		['Blue or green', ['green', 'blue']],
		['violet', ['purple']],
		['', []],
		['Crimson!', ['red']]
	])('%p names %p, matching whole words only', (answer, named) => {
		expect(namedColours(answer)).toEqual(named)
	})
})

describe('challengeImage()', () => {
	const cases = Object.keys(PALETTE)
		.sort()
		.flatMap((colour) => SHAPES.map((shape) => [colour, shape] as const))
	test.each(cases)('the %s %s is a big PNG that shows the colour', async (colour, shape) => {
		const png = challengeImage(colour, shape, seeded(1))
		const { width, height } = decodePng(png)
		const metadata = await new Bun.Image(png).metadata()
		expect({ format: metadata.format, big: Math.min(width, height) >= 256, seen: await dominantColourName(png) }).toEqual({
			format: 'png',
			big: true,
			seen: colour
		})
	})

	test('the palette makes guessing pass about two percent of the time', () => {
		expect(Object.keys(PALETTE)).toHaveLength(7) // two rounds: (1/7)^2 = 2.04 %
		expect(Math.abs((1 / 7) ** 2 - 0.02)).toBeLessThan(0.001)
	})
})

describe('runVisionProbe()', () => {
	test('a model that sees is verified, and the rounds use different colours', async () => {
		const { run, ref } = await probe({ mode: 'seeing' })
		const { result } = run
		expect({ outcome: result.outcome, vision_ok: result.vision_ok, rounds: result.rounds.length, error: result.error }).toEqual({
			outcome: 'verified',
			vision_ok: true,
			rounds: 2,
			error: null
		})
		expect(result.rounds[0]?.colour).not.toBe(result.rounds[1]?.colour)
		expect(result.rounds.map((r) => r.passed)).toEqual([true, true])
		const content = ref.requests[0]?.['messages'][0].content
		expect(content[0].text).toBe('What colour is the shape? Answer with one word.')
		expect(CHALLENGE_QUESTION).toBe(content[0].text)
		expect(content[1].image_url.url).toStartWith('data:image/png;base64,')
		expect(ref.requests).toHaveLength(2)
	})

	test('an answer in reasoning_content is read', async () => {
		const { run } = await probe({ mode: 'seeing', inReasoning: true })
		expect(run.result.outcome).toBe('verified')
	})

	test('a constant answer is not_supported', async () => {
		const { run } = await probe({ mode: 'constant', constant: 'Red.' })
		expect({ outcome: run.result.outcome, vision_ok: run.result.vision_ok }).toEqual({ outcome: 'not_supported', vision_ok: false })
	})

	test('naming every colour fails the round', async () => {
		const { run } = await probe({ mode: 'constant', constant: 'red green blue orange yellow purple black' })
		expect({ outcome: run.result.outcome, rounds: run.result.rounds.length, passed: run.result.rounds[0]?.passed }).toEqual({
			outcome: 'not_supported',
			rounds: 1,
			passed: false
		})
	})

	test('an image refusal is not_supported, with the backend message', async () => {
		const { run } = await probe({ mode: 'refuse' })
		expect({ outcome: run.result.outcome, vision_ok: run.result.vision_ok }).toEqual({ outcome: 'not_supported', vision_ok: false })
		expect(run.result.error).toContain('does not support image')
	})

	test.each(['error500', 'garbage', 'auth'] as const)('a backend answering %s is unknown', async (mode) => {
		const { run } = await probe({ mode })
		expect({ outcome: run.result.outcome, vision_ok: run.result.vision_ok, errorCode: run.errorCode }).toEqual({
			outcome: 'unknown',
			vision_ok: null,
			errorCode: 'backend_unavailable'
		})
		expect(run.result.error?.length).toBeGreaterThan(10)
	})

	test('a hung backend is unknown within the read timeout', async () => {
		const started = performance.now()
		const { run } = await probe({ mode: 'hang', hangMs: 5000 }, 0.5)
		expect({ outcome: run.result.outcome, errorCode: run.errorCode }).toEqual({ outcome: 'unknown', errorCode: 'backend_timeout' })
		expect(run.result.error).toContain('did not answer within 0.5s')
		expect(performance.now() - started).toBeLessThan(4000)
	})

	test('a dead backend is unknown at once', async () => {
		const port = await deadPort()
		const started = performance.now()
		const client = new BackendClient(`http://127.0.0.1:${port}/v1`, { timeout: 30 })
		const { result, errorCode } = await runVisionProbe(client, { name: 'm', modelId: 'x', timestamp: TIMESTAMP })
		expect({ outcome: result.outcome, errorCode, rounds: result.rounds }).toEqual({ outcome: 'unknown', errorCode: 'backend_unavailable', rounds: [] })
		expect(performance.now() - started).toBeLessThan(2000)
	})
})
