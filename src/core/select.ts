/**
 * @module
 * Pure selection: where to reach a model, and which model serves a role. No IO here.
 *
 * Same registry in, same answer out: role candidates are ordered by (priority present, priority, name
 * bytes), so ties never depend on file order.
 */
import { type Capability, missingCapabilities } from './capabilities.ts'
import { capabilitiesOf, internalModelId, isDeprecated, isLocked, rolesOf } from './entry.ts'
import { MissingCapabilities, NoModelForRole, type Rejection } from './errors.ts'
import { compareBytes } from './integrity.ts'
import type { Registry } from './registry.ts'
import type { RegistryEntry, Selection } from './schema.ts'

/** Default port of each backend's OpenAI-compatible server. */
export const DEFAULT_PORTS: Readonly<Record<string, number>> = { ollama: 11434, vllm: 8000, lmdeploy: 23333, llamacpp: 8080 }
const FALLBACK_PORT = 8000

const backendKey = (backend: string) => backend.toLowerCase().replace(/[-_.]/g, '')
const trimSlashes = (url: string) => url.replace(/\/+$/, '')

/** `base_url` if set; else `host` if it is a full URL; else `http://{host or localhost}:{port}/v1`. */
export function endpointOf(entry: RegistryEntry): string {
	const cfg = entry.backend_config ?? {}
	if (cfg.base_url) return trimSlashes(cfg.base_url)
	const host = (cfg.host ?? '').trim()
	if (/^https?:\/\//.test(host)) return trimSlashes(host)
	const port = cfg.port ?? DEFAULT_PORTS[backendKey(entry.backend)] ?? FALLBACK_PORT
	return `http://${host || 'localhost'}:${port}/v1`
}

const selections = new WeakMap<RegistryEntry, Selection>()

/**
 * Where and how to reach `entry`. Built once per entry of a snapshot (entries never change in place) and
 * frozen, since every caller shares it.
 */
export function selectionOf(entry: RegistryEntry): Selection {
	let selection = selections.get(entry)
	if (!selection) selections.set(entry, (selection = Object.freeze(buildSelection(entry))))
	return selection
}

function buildSelection(entry: RegistryEntry): Selection {
	return {
		name: entry.name,
		endpoint: endpointOf(entry),
		backend: entry.backend,
		internal_model_id: internalModelId(entry),
		capabilities: Object.freeze({ ...capabilitiesOf(entry) }),
		locked: isLocked(entry),
		deprecated: isDeprecated(entry),
		display_name: entry.display_name ?? null
	}
}

/**
 * The entry by name or alias, refused (naming every gap) if it lacks a required capability.
 * @throws {ModelNotFound} @throws {InvalidName} @throws {MissingCapabilities}
 */
export function selectByName(registry: Registry, name: string, required: readonly Capability[] = []): RegistryEntry {
	const entry = registry.get(name)
	const missing = missingCapabilities(capabilitiesOf(entry), required)
	if (missing.length) throw new MissingCapabilities(entry.name, missing)
	return entry
}

const roleOrders = new WeakMap<Registry, Map<string, RegistryEntry[]>>()

/** Entries listing `role`: lowest priority first, unprioritised after, ties by name bytes. Cached per snapshot. */
export function roleOrder(registry: Registry, role: string): RegistryEntry[] {
	let cache = roleOrders.get(registry)
	if (!cache) roleOrders.set(registry, (cache = new Map()))
	const cached = cache.get(role)
	if (cached) return cached
	const rank = (e: RegistryEntry) => e.role_priority?.[role]
	const order = registry.entries
		.filter((e) => rolesOf(e).includes(role))
		.sort((a, b) => {
			const pa = rank(a)
			const pb = rank(b)
			if ((pa === undefined) !== (pb === undefined)) return pa === undefined ? 1 : -1
			if (pa !== undefined && pb !== undefined && pa !== pb) return pa - pb
			return compareBytes(a.name, b.name)
		})
	if (cache.size < 1024) cache.set(role, order) // bounded: callers may ask for any number of roles
	return order
}

/**
 * The best non-deprecated entry for `role` that has every required capability.
 * @throws {NoModelForRole} naming each candidate passed over and why
 */
export function selectByRole(registry: Registry, role: string, required: readonly Capability[] = []): RegistryEntry {
	const rejected: Rejection[] = []
	for (const entry of roleOrder(registry, role)) {
		if (isDeprecated(entry)) {
			rejected.push({ name: entry.name, reason: 'deprecated' })
			continue
		}
		const missing = missingCapabilities(capabilitiesOf(entry), required)
		if (missing.length) {
			rejected.push({ name: entry.name, reason: `lacks ${missing.join(', ')}` })
			continue
		}
		return entry
	}
	throw new NoModelForRole(role, rejected)
}
