/**
 * Builders for registry entries, registry files and model folders, in temporary directories that are
 * removed when the `using` scope ends.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { openDeps, type Deps } from '../../src/core/service.ts'
import { readSettings } from '../../src/core/settings.ts'

/** A temporary directory removed at the end of the `using` scope. */
export function tempDir(prefix = 'iwl-'): { path: string; [Symbol.dispose](): void } {
	const path = mkdtempSync(join(tmpdir(), prefix))
	return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) }
}

/** Options of {@link entry}. */
export interface EntryOptions {
	backend?: string
	modelPath?: string
	capabilities?: Record<string, unknown>
	roles?: string[]
	rolePriority?: Record<string, number>
	aliases?: string[]
	servedModelId?: string
	deprecated?: boolean
	host?: string
	port?: number
	baseUrl?: string
	extra?: Record<string, unknown>
}

/** An imageworks-style entry (only the fields given, plus the ones every entry has). */
export function entry(name: string, o: EntryOptions = {}): Record<string, unknown> {
	const cfg: Record<string, unknown> = {}
	if (o.baseUrl !== undefined) cfg['base_url'] = o.baseUrl
	if (o.port !== undefined) cfg['port'] = o.port
	if (o.host !== undefined) cfg['host'] = o.host
	if (o.modelPath !== undefined) cfg['model_path'] = o.modelPath
	const e: Record<string, unknown> = {
		name,
		backend: o.backend ?? 'vllm',
		backend_config: cfg,
		capabilities: { text: true, ...(o.capabilities ?? {}) },
		roles: o.roles ?? [],
		role_priority: o.rolePriority ?? {},
		model_aliases: o.aliases ?? [],
		deprecated: o.deprecated ?? false,
		version_lock: { locked: false, expected_aggregate_sha256: null, last_verified: null }
	}
	if (o.servedModelId !== undefined) e['served_model_id'] = o.servedModelId
	return { ...e, ...(o.extra ?? {}) }
}

/** Write entries as 2-space indented JSON with a final newline (as imageworks writes it). */
export function writeRegistry(path: string, entries: unknown[]): string {
	mkdirSync(dirname(path), { recursive: true })
	writeFileSync(path, JSON.stringify(entries, null, 2) + '\n')
	return path
}

export function readJson<T = unknown>(path: string): T {
	return JSON.parse(readFileSync(path, 'utf8')) as T
}

/** A small model folder: config, two weight shards, a nested tokenizer file. */
export function makeModelDir(root: string): string {
	const d = join(root, 'models', 'tiny')
	mkdirSync(join(d, 'tokenizer'), { recursive: true })
	writeFileSync(join(d, 'config.json'), '{"hidden_size": 64}\n')
	writeFileSync(join(d, 'model-00001-of-00002.safetensors'), randomBytes(300_000))
	writeFileSync(join(d, 'model-00002-of-00002.safetensors'), randomBytes(123_457))
	writeFileSync(join(d, 'tokenizer', 'tokenizer.json'), '{"version": "1.0"}')
	return d
}

/** The standard test world: a registry and a local model folder under one temporary directory. */
export interface World {
	root: string
	registryPath: string
	modelDir: string
	deps: Deps
	[Symbol.dispose](): void
}

/**
 * A registry with a local model (tiny), two vision models competing for a role, and a deprecated entry
 * (the Python suite's `registry_path` fixture).
 */
export function world(): World {
	const dir = tempDir()
	const modelDir = makeModelDir(dir.path)
	const registryPath = writeRegistry(join(dir.path, 'configs', 'model_registry.json'), [
		entry('tiny', { backend: 'llamacpp', modelPath: modelDir, aliases: ['tiny-alias'], roles: ['keywords'], rolePriority: { keywords: 20 } }),
		entry('vision-a', {
			backend: 'vllm',
			capabilities: { vision: true, tools: true },
			roles: ['caption', 'keywords'],
			rolePriority: { caption: 10 },
			servedModelId: 'org/vision-a'
		}),
		entry('vision-b', {
			backend: 'ollama',
			capabilities: { image: true },
			roles: ['caption'],
			rolePriority: { caption: 10 },
			servedModelId: 'vision-b:7b',
			host: 'gpu-box'
		}),
		entry('old', { backend: 'vllm', roles: ['caption', 'keywords'], rolePriority: { caption: 1, keywords: 1 }, deprecated: true })
	])
	const deps = openDeps(readSettings({}, { registryPath }))
	return {
		root: dir.path,
		registryPath,
		modelDir,
		deps,
		[Symbol.dispose]: () => {
			deps.state.close()
			dir[Symbol.dispose]()
		}
	}
}

/** Deps over an existing registry file (a fresh store and state handle, like a new process). */
export function depsFor(registryPath: string, env: Record<string, string> = {}): Deps {
	return openDeps(readSettings(env, { registryPath }))
}
