/**
 * @module
 * The vision probe: proof that a model sees, by a challenge whose answer is checked.
 *
 * The loader draws one large filled shape in a colour picked at random from a fixed palette of seven and
 * asks "What colour is the shape? Answer with one word." Two rounds with different colours; the model is
 * `verified` only if each answer names the right colour and no other palette colour. A text-only model that
 * guesses passes with a chance of (1/7)^2, about 2 percent.
 *
 * Three outcomes, never two: `verified`; `not_supported` (a wrong answer, or the backend refused the image
 * with an error about images); `unknown` (backend down, timeout, 5xx, auth, garbage). Only the first two are
 * conclusive.
 */
import { BackendError, ImagesRefused } from './errors.ts'
import { type PreparedImage, type Rgb, dataUri, encodePng } from './images.ts'
import type { BackendClient, ChatAnswer, ChatMessage } from './openai.ts'
import type { ProbeResult, ProbeRound } from './schema.ts'

export const PROBE_VERSION = 'colour-challenge-v1'
export const CHALLENGE_QUESTION = 'What colour is the shape? Answer with one word.'
export const DESCRIBE_PROMPT = 'Describe this image succinctly.'
/** At least 256x256, per the contract. */
export const IMAGE_SIZE = 320

/** The fixed palette: far apart in hue and lightness, so any seeing model names them without doubt. */
export const PALETTE: Readonly<Record<string, Rgb>> = {
	red: [220, 30, 30],
	orange: [245, 140, 20],
	yellow: [245, 220, 20],
	green: [30, 160, 60],
	blue: [30, 70, 220],
	purple: [130, 40, 170],
	black: [15, 15, 15]
}
const COLOUR_WORDS: Readonly<Record<string, readonly string[]>> = {
	red: ['red', 'crimson', 'scarlet'],
	orange: ['orange'],
	yellow: ['yellow'],
	green: ['green'],
	blue: ['blue'],
	purple: ['purple', 'violet'],
	black: ['black']
}
const WORD_RE = Object.entries(COLOUR_WORDS).map(([colour, words]) => [colour, new RegExp(`\\b(${words.join('|')})\\b`, 'i')] as const)
export const SHAPES = ['circle', 'square', 'triangle', 'diamond'] as const
export type Shape = (typeof SHAPES)[number]

/** A source of random numbers in [0, 1): injected so tests can fix the colours. */
export type Random = () => number

/** The palette colours an answer names, as whole words, in palette order. */
export function namedColours(answer: string): string[] {
	return WORD_RE.filter(([, re]) => re.test(answer)).map(([colour]) => colour)
}

const pick = <T>(items: readonly T[], random: Random): T => items[Math.floor(random() * items.length)] as T

/** A PNG of one large filled shape in `colour` on white, jittered so no two are identical. */
export function challengeImage(colour: string, shape: Shape, random: Random = Math.random): Uint8Array {
	const size = IMAGE_SIZE
	const fill = PALETTE[colour]
	if (!fill) throw new Error(`not a palette colour: ${colour}`)
	const margin = 24 + Math.floor(random() * 25)
	const dx = Math.floor(random() * 25) - 12
	const dy = Math.floor(random() * 25) - 12
	const [x0, y0, x1, y1] = [margin + dx, margin + dy, size - margin + dx, size - margin + dy]
	const cx = (x0 + x1) / 2
	const cy = (y0 + y1) / 2
	const half = (x1 - x0) / 2
	const inShape = (x: number, y: number): boolean => {
		if (x < x0 || x > x1 || y < y0 || y > y1) return false
		switch (shape) {
			case 'square':
				return true
			case 'circle':
				return (x - cx) ** 2 + (y - cy) ** 2 <= half * half
			case 'diamond':
				return Math.abs(x - cx) + Math.abs(y - cy) <= half
			case 'triangle': {
				// apex at the top centre, base along the bottom
				const t = (y - y0) / (y1 - y0)
				return Math.abs(x - cx) <= t * half
			}
		}
	}
	const white: Rgb = [255, 255, 255]
	return encodePng(size, size, (x, y) => (inShape(x, y) ? fill : white))
}

function imageMessage(prompt: string, uri: string): ChatMessage[] {
	return [{ role: 'user', content: [{ type: 'text', text: prompt }, { type: 'image_url', image_url: { url: uri } }] }]
}

/** The content, unless the answer is only in the reasoning (some servers put it there). */
function answerText(answer: ChatAnswer): string {
	const content = answer.content.trim()
	const reasoning = answer.reasoningContent.trim()
	if (namedColours(content).length || !reasoning) return content
	if (namedColours(reasoning).length || !content) return reasoning
	return content
}

/** Options of {@link runVisionProbe}. */
export interface ProbeOptions {
	name: string
	modelId: string
	/** Also describe this caller image (after the challenge, unless the challenge was inconclusive). */
	image?: PreparedImage | undefined
	random?: Random
	rounds?: number
	timestamp: string
}

/** A probe's result plus the error code behind an `unknown` (for the HTTP status). */
export interface ProbeRun {
	result: ProbeResult
	errorCode: string | null
}

/** Run the challenge (and describe the caller's image, if any); never throws for backend failures. */
export async function runVisionProbe(client: BackendClient, options: ProbeOptions): Promise<ProbeRun> {
	const random = options.random ?? Math.random
	const colours = Object.keys(PALETTE)
	const chosen: string[] = []
	while (chosen.length < (options.rounds ?? 2)) {
		const colour = pick(colours, random)
		if (!chosen.includes(colour)) chosen.push(colour)
	}
	const started = performance.now()
	const rounds: ProbeRound[] = []
	let outcome: ProbeResult['outcome'] = 'verified'
	let error: string | null = null
	let errorCode: string | null = null
	try {
		for (const colour of chosen) {
			const shape = pick(SHAPES, random)
			const png = challengeImage(colour, shape, random)
			const answer = await client.chat(options.modelId, imageMessage(CHALLENGE_QUESTION, dataUri('image/png', png)), { maxTokens: 16 })
			const text = answerText(answer)
			const named = namedColours(text)
			const passed = named.length === 1 && named[0] === colour
			rounds.push({ colour, shape, answer: text, named, passed, latency_ms: round1(answer.latencyMs) })
			if (!passed) {
				outcome = 'not_supported'
				break
			}
		}
	} catch (caught) {
		if (!(caught instanceof BackendError)) throw caught
		outcome = caught instanceof ImagesRefused ? 'not_supported' : 'unknown'
		error = caught.message
		errorCode = caught.code
	}
	let description: string | null = null
	if (options.image && outcome !== 'unknown') {
		try {
			const answer = await client.chat(options.modelId, imageMessage(DESCRIBE_PROMPT, dataUri(options.image.mime, options.image.data)), {
				maxTokens: 128
			})
			description = answerText(answer)
		} catch (caught) {
			if (!(caught instanceof BackendError)) throw caught
			error ??= `describing the caller's image failed: ${caught.message}` // the challenge result stands
		}
	}
	const result: ProbeResult = {
		name: options.name,
		outcome,
		vision_ok: outcome === 'verified' ? true : outcome === 'not_supported' ? false : null,
		probe_version: PROBE_VERSION,
		latency_ms: round1(performance.now() - started),
		timestamp: options.timestamp,
		rounds,
		description,
		image: options.image
			? { mime: options.image.mime, width: options.image.width, height: options.image.height, resized: options.image.resized, source: options.image.source }
			: null,
		error,
		notes: ''
	}
	result.notes = probeNotes(result)
	return { result, errorCode }
}

/** Human-readable notes with the answers, as stored in `probes.vision.notes`. */
export function probeNotes(result: Pick<ProbeResult, 'rounds' | 'error'>): string {
	const parts = result.rounds.map(
		(r, i) =>
			`round ${i + 1}: ${r.shape} in ${r.colour}, answered "${printable(r.answer.slice(0, 80))}" (${r.passed ? 'pass' : 'fail'})`
	)
	if (result.error) parts.push(result.error)
	return parts.join('; ')
}

// eslint-disable-next-line no-control-regex
const printable = (text: string) => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
const round1 = (ms: number) => Math.round(ms * 10) / 10
