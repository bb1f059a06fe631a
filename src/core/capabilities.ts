/**
 * @module
 * The capability vocabulary: canonical names, the synonyms accepted on input, normalisation. Pure.
 *
 * Registries written by imageworks carry many synonym keys side by side (`vision`, `vl`, `image`,
 * `multimodal`...). The canonical key, when present, is authoritative; synonyms only fill in a canonical
 * key that is absent. Output always uses the canonical names, and `text` defaults to true.
 */
import { UnknownCapability } from './errors.ts'

/** Canonical capability names, in display order. */
export const CANONICAL = ['text', 'vision', 'audio', 'embedding', 'tools', 'thinking'] as const
export type Capability = (typeof CANONICAL)[number]

/** Canonical capabilities of one model: every canonical name, true or false. */
export type Capabilities = Record<Capability, boolean>

// Keys are compared after lower-casing and removing '-', '_' and spaces (so "tool-use" == "tool_use").
export const SYNONYMS: Record<Capability, readonly string[]> = {
	text: ['text', 'language', 'chat', 'llm', 'completion', 'generate'],
	vision: ['vision', 'image', 'images', 'multimodal', 'vl', 'visual', 'mm', 'vlm', 'imageinput'],
	audio: ['audio', 'speech', 'voice', 'asr', 'sound'],
	embedding: ['embedding', 'embeddings', 'embed', 'textembedding', 'representation'],
	tools: [
		'tools', 'tool', 'tooluse', 'toolcall', 'toolcalls', 'toolchoice', 'autotoolchoice', 'functioncall',
		'functioncalls', 'functioncalling', 'functiontools', 'toolcalling', 'functions'
	],
	thinking: ['thinking', 'think', 'reasoning', 'reason', 'reasoner', 'chainofthought', 'cot']
}

const LOOKUP = new Map<string, Capability>(
	CANONICAL.flatMap((canon) => SYNONYMS[canon].map((syn) => [syn, canon] as const))
)

const fold = (name: string) => name.trim().toLowerCase().replace(/[-_\s]+/g, '')

/** The canonical name for `name` (any case, any synonym), or undefined if it is not a capability. */
export function canonicalName(name: string): Capability | undefined {
	return LOOKUP.get(fold(name))
}

/**
 * Map a registry `capabilities` object to `{canonical: bool}` for every canonical name.
 *
 * An explicit canonical key wins over its synonyms; otherwise any true synonym makes it true. Keys that
 * are not capabilities are ignored here (and kept in the file).
 */
export function normaliseCapabilities(raw: Record<string, unknown> | null | undefined): Capabilities {
	const explicit = new Map<Capability, boolean>()
	const fromSynonyms = new Map<Capability, boolean>()
	for (const [key, value] of Object.entries(raw ?? {})) {
		const folded = fold(key)
		const canon = LOOKUP.get(folded)
		if (canon === undefined || value === null || value === undefined) continue
		if (folded === canon) explicit.set(canon, Boolean(value))
		else fromSynonyms.set(canon, (fromSynonyms.get(canon) ?? false) || Boolean(value))
	}
	const result = {} as Capabilities
	for (const canon of CANONICAL) result[canon] = explicit.get(canon) ?? fromSynonyms.get(canon) ?? canon === 'text'
	return result
}

/**
 * Canonicalise required capability names, in canonical order, without duplicates.
 * @throws {UnknownCapability} naming every unknown name at once
 */
export function parseRequired(names: Iterable<string>): Capability[] {
	const wanted = new Set<Capability>()
	const unknown: string[] = []
	for (const name of names) {
		const canon = canonicalName(name)
		if (canon === undefined) unknown.push(name)
		else wanted.add(canon)
	}
	if (unknown.length) throw new UnknownCapability(unknown, CANONICAL)
	return CANONICAL.filter((c) => wanted.has(c))
}

/** The names in `required` that `capabilities` (already normalised) lacks. */
export function missingCapabilities(capabilities: Capabilities, required: readonly Capability[]): Capability[] {
	return required.filter((c) => !capabilities[c])
}

/** Every name accepted on input (canonical names and synonyms), for documentation. */
export function acceptedCapabilityNames(): string[] {
	return [...LOOKUP.keys()].sort()
}
