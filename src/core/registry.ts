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
import { type RegistryEntry, RegistryEntryCheck } from './schema.ts'

/** The registry's entries in file order, indexed by name and alias. Never mutated once built. */
export class Registry {
	readonly #index = new Map<string, number>()

	constructor(readonly entries: readonly RegistryEntry[]) {
		entries.forEach((entry, i) => this.#index.set(entry.name, i))
		entries.forEach((entry, i) => {
			for (const alias of entry.model_aliases ?? []) if (!this.#index.has(alias)) this.#index.set(alias, i)
		})
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
	if (problems.length) throw new RegistryInvalid(path, problems)
	const entries = raw as RegistryEntry[]
	const duplicates = duplicateProblems(entries)
	if (duplicates.length) throw new RegistryInvalid(path, duplicates)
	return new Registry(entries)
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
		throw new RegistryInvalid(path, ['the JSON is nested too deeply to read'])
	}
}

/** `entry 3 ("llava")`, or `entry 3` when the entry has no usable name. */
export function entryLabel(index: number, item: unknown): string {
	const name = isObject(item) ? item['name'] : undefined
	return `entry ${index}` + (typeof name === 'string' ? ` (${JSON.stringify(name)})` : '')
}

/** Every problem of one entry, each naming the entry and the field. */
export function entryProblems(item: unknown, index: number): string[] {
	if (!isObject(item)) return [`entry ${index}: must be a JSON object, found ${jsonType(item)}`]
	if (RegistryEntryCheck.Check(item)) return []
	const label = entryLabel(index, item)
	const seen = new Set<string>()
	const problems: string[] = []
	for (const error of RegistryEntryCheck.Errors(item)) {
		if (seen.has(error.path)) continue
		seen.add(error.path)
		const field = error.path.slice(1).replaceAll('/', '.') || '(entry)'
		problems.push(`${label}: field ${field}: ${describeError(error)}`)
	}
	return problems
}

function describeError(error: ValueError): string {
	const path = error.path
	if (path === '/name') return `name ${nameProblem(error.value) ?? 'is missing (required)'}`
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
		case 'string':
			return 'a string'
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
export function duplicateProblems(entries: readonly RegistryEntry[]): string[] {
	const problems: string[] = []
	const owner = new Map<string, number>()
	entries.forEach((entry, i) => {
		const j = owner.get(entry.name)
		if (j !== undefined) problems.push(`duplicate name ${JSON.stringify(entry.name)}: entries ${j} and ${i}`)
		else owner.set(entry.name, i)
	})
	const aliasOwner = new Map<string, number>()
	entries.forEach((entry, i) => {
		for (const alias of new Set(entry.model_aliases ?? [])) {
			if (alias === entry.name) continue
			const j = owner.get(alias) ?? aliasOwner.get(alias)
			if (j !== undefined && j !== i) {
				problems.push(
					`alias ${JSON.stringify(alias)} of entry ${i} (${JSON.stringify(entry.name)}) is already the name or ` +
						`an alias of entry ${j} (${JSON.stringify(entries[j]?.name)})`
				)
			} else aliasOwner.set(alias, i)
		}
	})
	return problems
}

function isObject(value: unknown): value is Record<string, unknown> {
	return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function jsonType(value: unknown): string {
	if (value === null) return 'null'
	if (Array.isArray(value)) return 'an array'
	return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}
