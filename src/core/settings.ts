/**
 * @module
 * Settings from the environment, read once by the adapters and passed down as plain values. Nothing in
 * the core reads `process.env` itself.
 */
import { RequestError } from './errors.ts'
import { DEFAULT_WINDOW } from './metrics.ts'

export const DEFAULT_REGISTRY = 'configs/model_registry.json'

/** Everything configurable, with the environment variable that sets it. */
export interface Settings {
	/** IMAGEWORKS_REGISTRY (or --registry). */
	registryPath: string
	/** IMAGEWORKS_API_TOKEN: when set, every route but /healthz needs `Authorization: Bearer <token>`. */
	apiToken: string | undefined
	/** IMAGEWORKS_LOCK_TIMEOUT: seconds to wait for another writer. */
	lockTimeout: number
	/** Request bodies over this many bytes get 413 (a 20 MB image is about 27 MB as base64). */
	maxBodyBytes: number
	/** IMAGEWORKS_IMAGE_ROOTS (`:`-separated): where API callers' `image_path` may point; default the cwd. */
	imageRoots: string[]
	/** IMAGEWORKS_PROBE_TIMEOUT (or --timeout): seconds each backend request of a probe or bench may take. */
	probeTimeout: number
	/** IMAGEWORKS_CHECK_TIMEOUT: seconds for a readiness check (select with check_backend, list ?check=1). */
	checkTimeout: number
	/** IMAGEWORKS_METRICS_WINDOW: samples in the rolling window. */
	metricsWindow: number
}

/** A bad environment value: a usage error, not a failed operation. */
export class InvalidSetting extends RequestError {
	override name = 'InvalidSetting'
	override readonly code = 'invalid_setting'
}

function seconds(env: Record<string, string | undefined>, key: string, fallback: number): number {
	const value = (env[key] ?? '').trim()
	if (!value) return fallback
	const parsed = Number(value)
	if (!Number.isFinite(parsed) || parsed <= 0) {
		throw new InvalidSetting(`${key}=${JSON.stringify(value)} must be a positive number of seconds`)
	}
	return parsed
}

function positiveInteger(env: Record<string, string | undefined>, key: string, fallback: number): number {
	const value = (env[key] ?? '').trim()
	if (!value) return fallback
	if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidSetting(`${key}=${JSON.stringify(value)} must be a positive integer`)
	return Number(value)
}

/**
 * Settings from `env`, with `overrides` (from command-line options) winning. `cwd` is the default image root.
 * @throws {InvalidSetting}
 */
export function readSettings(env: Record<string, string | undefined>, overrides: Partial<Settings> = {}, cwd = process.cwd()): Settings {
	const roots = (env['IMAGEWORKS_IMAGE_ROOTS'] ?? '')
		.split(':')
		.map((r) => r.trim())
		.filter(Boolean)
	const settings: Settings = {
		registryPath: env['IMAGEWORKS_REGISTRY'] || DEFAULT_REGISTRY,
		apiToken: env['IMAGEWORKS_API_TOKEN'] || undefined,
		lockTimeout: seconds(env, 'IMAGEWORKS_LOCK_TIMEOUT', 10),
		maxBodyBytes: 32 << 20,
		imageRoots: roots.length ? roots : [cwd],
		probeTimeout: seconds(env, 'IMAGEWORKS_PROBE_TIMEOUT', 60),
		checkTimeout: seconds(env, 'IMAGEWORKS_CHECK_TIMEOUT', 2),
		metricsWindow: positiveInteger(env, 'IMAGEWORKS_METRICS_WINDOW', DEFAULT_WINDOW)
	}
	for (const [key, value] of Object.entries(overrides)) {
		if (value !== undefined) (settings as unknown as Record<string, unknown>)[key] = value
	}
	return settings
}
