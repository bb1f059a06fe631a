/**
 * @module
 * The normalised view of one registry entry that the rest of the code uses. Pure.
 *
 * Entries are the file's own parsed JSON (unknown fields included), so these accessors fold what
 * imageworks writes (nulls, missing blocks, `served_model_id: "None"`) into plain values.
 */
import { type Capabilities, normaliseCapabilities } from './capabilities.ts'
import type { RegistryEntry } from './schema.ts'

const capabilityCache = new WeakMap<RegistryEntry, Capabilities>()

/** Canonical capabilities (computed once per entry; entries are never mutated). */
export function capabilitiesOf(entry: RegistryEntry): Capabilities {
	let caps = capabilityCache.get(entry)
	if (!caps) {
		caps = normaliseCapabilities(entry.capabilities)
		capabilityCache.set(entry, caps)
	}
	return caps
}

/**
 * The id the backend knows the model by: `served_model_id`, else the name. imageworks wrote Python's
 * `None` as the string "None"; that means "not set", not a model id.
 */
export function internalModelId(entry: RegistryEntry): string {
	const sid = (entry.served_model_id ?? '').trim()
	return sid === '' || sid === 'None' || sid === 'null' ? entry.name : sid
}

export const isLocked = (entry: RegistryEntry): boolean => entry.version_lock?.locked === true
export const isDeprecated = (entry: RegistryEntry): boolean => entry.deprecated === true
export const rolesOf = (entry: RegistryEntry): string[] => entry.roles ?? []
export const visionOk = (entry: RegistryEntry): boolean | null => entry.probes?.vision?.vision_ok ?? null
export const expectedAggregate = (entry: RegistryEntry): string | undefined =>
	entry.version_lock?.expected_aggregate_sha256 || undefined
export const recordedAggregate = (entry: RegistryEntry): string | undefined =>
	entry.artifacts?.aggregate_sha256 || undefined

/** The hash a locked model's files must have: the expected one, else the one recorded by verify. */
export const lockReference = (entry: RegistryEntry): string | undefined => expectedAggregate(entry) ?? recordedAggregate(entry)

/** `{path: sha256}` from the last verify, as recorded in `artifacts.files`. */
export function recordedFiles(entry: RegistryEntry): Map<string, string> {
	const files = new Map<string, string>()
	for (const f of entry.artifacts?.files ?? []) if (f.sha256) files.set(f.path, f.sha256)
	return files
}

// What imageworks writes for a fresh entry, so a block the loader creates looks like its own.
const BLOCK_DEFAULTS: Record<string, () => Record<string, unknown>> = {
	version_lock: () => ({ locked: false, expected_aggregate_sha256: null, last_verified: null }),
	artifacts: () => ({ aggregate_sha256: '', files: [] })
}

/** The raw entry's `key` object, created in place when it is missing or null (others are kept as they are). */
export function ensureBlock(raw: Record<string, unknown>, key: string): Record<string, unknown> {
	const value = raw[key]
	if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>
	const created = BLOCK_DEFAULTS[key]?.() ?? {}
	raw[key] = created
	return created
}
