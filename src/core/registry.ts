/**
 * @module
 * One validated snapshot of the registry file, and the parser that makes it. Pure: no file IO here.
 *
 * Parsing reports every problem at once: malformed JSON names the line and column; a bad entry names its
 * index, its name and the field; a duplicate name or alias names both entries. A registry with any
 * invalid entry is invalid as a whole, so no entry is ever silently skipped.
 */
import type { TSchema } from '@sinclair/typebox'
import type { ValueError } from '@sinclair/typebox/errors'
import { InvalidName, ModelNotFound, RegistryInvalid } from './errors.ts'
import { scanJson } from './json-text.ts'
import { nameProblem } from './names.ts'
import { similarity } from './similarity.ts'
import { checkRegistryEntry } from './generated/entry-check.js'
import { type RegistryEntry, registryEntryChecker } from './schema.ts'

/** The registry's entries in file order, indexed by name and alias. Never mutated once built. */
export class Registry {
	readonly #index: Map<string, number>

	/** @param index names and aliases to positions, when the caller has it already ({@link indexEntries}) */
	constructor(
		readonly entries: readonly RegistryEntry[],
		index?: Map<string, number>
	) {
		this.#index = index ?? indexEntries(entries).index
	}

	/**
	 * The position of the entry named `name` (or with that alias).
	 * @throws {InvalidName} when no entry could have that name (empty, `../x`, control characters)
	 * @throws {ModelNotFound} with up to three close names
	 */
	indexOf(name: string): number {
		const i = this.#index.get(name)
		if (i !== undefined) return i
		const problem = nameProblem(name, { alias: true })
		if (problem) throw new InvalidName(String(name).slice(0, 200), problem)
		throw new ModelNotFound(name, this.suggest(name))
	}

	/** The entry named `name` (or with that alias); see {@link Registry.indexOf}. */
	get(name: string): RegistryEntry {
		return this.entries[this.indexOf(name)] as RegistryEntry
	}

	/** Up to three known names or aliases close to `name`, for "did you mean". */
	suggest(name: string): string[] {
		if (typeof name !== 'string' || name.length > 256) return []
		const lowered = new Map<string, string>()
		for (const e of this.entries)
			for (const known of [e.name, ...(e.model_aliases ?? [])])
				if (!lowered.has(known.toLowerCase())) lowered.set(known.toLowerCase(), known)
		const wanted = name.toLowerCase()
		const exact = lowered.get(wanted)
		if (exact !== undefined) return [exact]
		return [...lowered.keys()]
			.map((k) => ({ k, score: similarity(wanted, k) }))
			.filter((c) => c.score >= 0.6)
			.sort((a, b) => b.score - a.score || (a.k < b.k ? -1 : 1))
			.slice(0, 3)
			.map((c) => lowered.get(c.k) as string)
	}
}

// ---------------------------------------------------------------- parsing

/**
 * Parse and validate registry text.
 * @param text the file's text
 * @param path the file's path, for messages
 * @throws {RegistryInvalid} listing every problem found
 */
export function parseRegistry(text: string, path: string): Registry {
	const raw = parseJsonText(text, path)
	if (!Array.isArray(raw)) {
		throw new RegistryInvalid(path, [`the top level must be a JSON array of entries, found ${jsonType(raw)}`])
	}
	const problems: string[] = []
	raw.forEach((item, i) => problems.push(...entryProblems(item, i)))
	// Clashes are reported beside the other problems, so one run lists everything to fix.
	const { index, problems: clashes } = indexEntries(raw)
	problems.push(...clashes)
	if (problems.length) throw new RegistryInvalid(path, problems)
	return new Registry(raw as RegistryEntry[], index)
}

/**
 * Parse registry text known to be valid (a writer recorded this very file as valid: see
 * `WriteLock.rememberLayout`), without validating it again.
 */
export function parseTrustedRegistry(text: string, path: string): Registry {
	return new Registry(parseJsonText(text, path) as RegistryEntry[])
}

/**
 * The JSON value of `text`; malformed JSON names the line and column of the first problem.
 * @throws {RegistryInvalid}
 */
export function parseJsonText(text: string, path: string): unknown {
	const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
	try {
		return JSON.parse(body)
	} catch {
		const scanned = scanJson(text)
		if (!scanned.ok) {
			const { line, column, message } = scanned.error
			throw new RegistryInvalid(path, [`malformed JSON at line ${line}, column ${column}: ${message}`])
		}
		if (scanned.nonFinite.length) {
			// Python's json module writes NaN and Infinity, so imageworks registries may hold them: they read
			// as null (no JSON number can hold them), and unchanged members keep their text on a write.
			let lenient = ''
			let at = 0
			for (const { start, end } of scanned.nonFinite) {
				lenient += text.slice(at, start) + 'null'
				at = end
			}
			lenient += text.slice(at)
			try {
				return JSON.parse(lenient.charCodeAt(0) === 0xfeff ? lenient.slice(1) : lenient)
			} catch {
				// nested too deeply, as below
			}
		}
		throw new RegistryInvalid(path, ['the JSON is nested too deeply to read'])
	}
}

/** `entry 3 ("llava")`, or `entry 3` when the entry has no usable name. */
export function entryLabel(index: number, item: unknown): string {
	const name = isObject(item) ? item['name'] : undefined
	return `entry ${index}` + (typeof name === 'string' ? ` (${JSON.stringify(name)})` : '')
}

/** Values nested deeper than this are refused: copying and comparing them would overflow the stack. */
export const MAX_DEPTH = 1000

/** Every problem of one entry, each naming the entry and the field. */
export function entryProblems(item: unknown, index: number): string[] {
	if (!isObject(item)) return [`entry ${index}: must be a JSON object, found ${jsonType(item)}`]
	const deep = tooDeepField(item)
	if (deep !== undefined) {
		return [`${entryLabel(index, item)}: field ${deep}: nested more than ${MAX_DEPTH} levels deep; make it shallower`]
	}
	if (checkRegistryEntry(item)) return []
	const label = entryLabel(index, item)
	const seen = new Set<string>()
	const problems: string[] = []
	for (const error of [...registryEntryChecker().Errors(item)].flatMap(innermost)) {
		if (seen.has(error.path)) continue
		seen.add(error.path)
		const field = error.path.slice(1).replaceAll('/', '.') || '(entry)'
		problems.push(`${label}: field ${field}: ${describeError(error)}`)
	}
	return problems
}

/**
 * A union error (`T` or null) on an object or array is about a field inside it: the errors of the one
 * variant of the value's own kind, so the message names the field that is wrong, not its container.
 */
function innermost(error: ValueError): ValueError[] {
	const variants = error.schema['anyOf'] as TSchema[] | undefined
	if (!Array.isArray(variants) || error.errors.length !== variants.length) return [error]
	const kind = Array.isArray(error.value) ? 'array' : isObject(error.value) ? 'object' : undefined
	const fitting = variants.flatMap((variant, k) => (kind && variant['type'] === kind ? [k] : []))
	if (fitting.length !== 1) return [error]
	const inner = [...(error.errors[fitting[0] as number] ?? [])]
	return inner.length ? inner.flatMap(innermost) : [error]
}

/** The first field of `entry` whose value nests deeper than {@link MAX_DEPTH}. */
function tooDeepField(entry: Record<string, unknown>): string | undefined {
	for (const key in entry) {
		const value = entry[key]
		if (typeof value === 'object' && value !== null && nestsDeeper(value, 2)) return key
	}
	return undefined
}

// Recursion is bounded by MAX_DEPTH frames, so it cannot overflow the stack; no allocation per value keeps
// a cold 1,000-entry load fast.
function nestsDeeper(value: object, depth: number): boolean {
	if (depth > MAX_DEPTH) return true
	if (Array.isArray(value)) {
		for (const child of value) if (typeof child === 'object' && child !== null && nestsDeeper(child, depth + 1)) return true
		return false
	}
	for (const key in value) {
		const child = (value as Record<string, unknown>)[key]
		if (typeof child === 'object' && child !== null && nestsDeeper(child, depth + 1)) return true
	}
	return false
}

function describeError(error: ValueError): string {
	const path = error.path
	if (path === '/name') return error.value === undefined ? 'is missing (required)' : `name ${nameProblem(error.value) ?? 'is invalid'}`
	if (/^\/model_aliases\/\d+$/.test(path)) return `alias ${nameProblem(error.value, { alias: true }) ?? 'is invalid'}`
	if (error.value === undefined) return 'is missing (required)'
	if (/sha256$/.test(path) && typeof error.value === 'string') return 'must be 64 lowercase hex digits (a sha256), or empty'
	const expected = describeSchema(error.schema)
	return expected ? `must be ${expected}, found ${preview(error.value)}` : error.message
}

/** A schema in words: "an integer from 1 to 65535 or null". */
function describeSchema(schema: TSchema): string | undefined {
	if (Array.isArray(schema['anyOf'])) {
		const parts = (schema['anyOf'] as TSchema[]).map(describeSchema)
		return parts.every(Boolean) ? parts.join(' or ') : undefined
	}
	switch (schema['type']) {
		case 'integer': {
			const { minimum, maximum } = schema as { minimum?: number; maximum?: number }
			return minimum !== undefined && maximum !== undefined ? `an integer from ${minimum} to ${maximum}` : 'an integer'
		}
		case 'number':
			return 'a number'
		case 'string': {
			const { minLength, maxLength } = schema as { minLength?: number; maxLength?: number }
			return minLength !== undefined && maxLength !== undefined ? `a string of ${minLength} to ${maxLength} characters` : 'a string'
		}
		case 'boolean':
			return 'true or false'
		case 'null':
			return 'null'
		case 'object':
			return 'an object'
		case 'array':
			return 'an array'
		default:
			return undefined
	}
}

function preview(value: unknown): string {
	const text = JSON.stringify(value) ?? String(value)
	return text.length > 60 ? text.slice(0, 57) + '...' : text
}

/**
 * Two entries with one name, or an alias that points at two entries, make selection ambiguous.
 * @returns one message per clash, naming both entries
 */
export function duplicateProblems(entries: readonly unknown[]): string[] {
	return indexEntries(entries).problems
}

/**
 * Names, then aliases, to the position of their entry, and one message per clash (naming both entries):
 * the lookup index and the duplicate check in one pass. The first owner of a name or alias keeps it.
 */
export function indexEntries(entries: readonly unknown[]): { index: Map<string, number>; problems: string[] } {
	// Entries may be invalid here (parse reports every problem at once): only string names and aliases count.
	const nameOf = (e: unknown) => (isObject(e) && typeof e['name'] === 'string' ? e['name'] : undefined)
	const problems: string[] = []
	const index = new Map<string, number>()
	for (let i = 0; i < entries.length; i++) {
		const name = nameOf(entries[i])
		if (name === undefined) continue
		const j = index.get(name)
		if (j !== undefined) problems.push(`duplicate name ${JSON.stringify(name)}: entries ${j} and ${i}`)
		else index.set(name, i)
	}
	for (let i = 0; i < entries.length; i++) {
		const entry = entries[i]
		const aliases = isObject(entry) ? entry['model_aliases'] : undefined
		if (!Array.isArray(aliases) || aliases.length === 0) continue
		const name = nameOf(entry)
		for (const alias of aliases.length === 1 ? aliases : new Set(aliases)) {
			if (typeof alias !== 'string' || alias === name) continue
			const j = index.get(alias)
			if (j === undefined) index.set(alias, i)
			else if (j !== i) {
				problems.push(
					`alias ${JSON.stringify(alias)} of entry ${i} (${JSON.stringify(name)}) is already the name or ` +
						`an alias of entry ${j} (${JSON.stringify(nameOf(entries[j]))})`
				)
			}
		}
	}
	return { index, problems }
}

function isObject(value: unknown): value is Record<string, unknown> {
	return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function jsonType(value: unknown): string {
	if (value === null) return 'null'
	if (Array.isArray(value)) return 'an array'
	return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}
