/**
 * @module
 * Artifact sets, the aggregate hash, content addresses and file diffs.
 *
 * The aggregate is the sha256 of the sorted lines of a `sha256sum` manifest, joined by "\n" with no
 * trailing newline, so anyone can recompute it with coreutils:
 *
 *     cd MODEL_DIR && find -L . -type f -not -path '*\/.git/*' -not -path '*\/.cache/*' -printf '%P\0' \
 *       | xargs -0 sha256sum | LC_ALL=C sort | head -c -1 | sha256sum
 *
 * (`sort` must compare bytes; paths are POSIX, relative to the model folder.)
 */
import { readdirSync, realpathSync, statSync, type BigIntStats } from 'node:fs'
import { basename, join } from 'node:path'
import type { FileChanges } from './errors.ts'
import type { Fingerprint } from './state.ts'

/** Folders that are never part of a model: VCS metadata and tool caches. */
export const SKIPPED_DIRS = new Set(['.git', '.cache'])

/** One file of a model: its manifest path, where to read it, and its stat fingerprint. */
export interface ArtifactFile {
	/** POSIX, relative to the model folder. */
	path: string
	abspath: string
	fingerprint: Fingerprint
}

/** Every regular file of a model, and the symlinks whose target is missing. */
export interface ArtifactScan {
	files: ArtifactFile[]
	dangling: string[]
}

export function fingerprintOf(st: BigIntStats): Fingerprint {
	return { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, inode: st.ino }
}

/**
 * Compare strings by their UTF-8 bytes (what `LC_ALL=C sort` does). UTF-8 byte order is code point order,
 * which differs from JavaScript's UTF-16 order only where a surrogate meets a unit from U+E000 up: the first
 * differing units are compared with surrogates lifted above those. No encoding, no allocation.
 */
export function compareBytes(a: string, b: string): number {
	if (a === b) return 0
	const n = Math.min(a.length, b.length)
	for (let i = 0; i < n; i++) {
		const x = a.charCodeAt(i)
		const y = b.charCodeAt(i)
		if (x !== y) return codePointRank(x) - codePointRank(y)
	}
	return a.length - b.length
}

/** A UTF-16 unit's place in code point order: surrogates (U+D800-DFFF) go above U+E000-FFFF. */
function codePointRank(unit: number): number {
	if (unit < 0xd800) return unit
	return unit < 0xe000 ? unit + 0x2000 : unit - 0x800
}

/**
 * Every regular file under `root` (following symlinks, skipping .git and .cache), sorted by path bytes.
 *
 * `root` may also be a single file (a lone GGUF), whose manifest path is its file name. Symlinked
 * folders are followed once each, so a link loop cannot recurse forever.
 * @throws the `stat` error of `root` (ENOENT, EACCES), or ENOTDIR when it is neither file nor folder
 */
export function scanArtifacts(root: string): ArtifactScan {
	const st = statSync(root, { bigint: true })
	if (st.isFile()) return { files: [{ path: basename(root), abspath: root, fingerprint: fingerprintOf(st) }], dangling: [] }
	if (!st.isDirectory()) throw Object.assign(new Error(`not a folder: ${root}`), { code: 'ENOTDIR' })
	const files: ArtifactFile[] = []
	const dangling: string[] = []
	const seenDirs = new Set([`${st.dev}:${st.ino}`])
	const stack: [string, string][] = [[root, '']]
	while (stack.length) {
		const [folder, prefix] = stack.pop() as [string, string]
		for (const name of readdirSync(folder)) {
			const abspath = join(folder, name)
			const rel = prefix + name
			let est: BigIntStats
			try {
				est = statSync(abspath, { bigint: true })
			} catch (error) {
				if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
					dangling.push(rel)
					continue
				}
				throw error
			}
			if (est.isDirectory()) {
				const key = `${est.dev}:${est.ino}`
				if (SKIPPED_DIRS.has(name) || seenDirs.has(key)) continue
				seenDirs.add(key)
				stack.push([abspath, rel + '/'])
			} else if (est.isFile()) {
				files.push({ path: rel, abspath, fingerprint: fingerprintOf(est) })
			}
		}
	}
	files.sort((a, b) => compareBytes(a.path, b.path))
	dangling.sort(compareBytes)
	return { files, dangling }
}

/** sha256 over the sorted `"<sha>  <path>"` lines joined by newlines, no trailing newline. */
export function aggregateSha256(hashes: ReadonlyMap<string, string>): string {
	const lines = [...hashes].map(([path, sha]) => `${sha}  ${path}`).sort(compareBytes)
	return new Bun.CryptoHasher('sha256').update(lines.join('\n')).digest('hex')
}

const HEX64 = /^[0-9a-f]{64}$/
const OLLAMA_BLOB = /^sha256[-:]([0-9a-f]{64})$/

/** The sha256 a file's real name promises: a Hugging Face blob, or an Ollama `sha256-<hex>` blob. */
export function contentAddress(abspath: string): string | undefined {
	let name: string
	try {
		name = basename(realpathSync(abspath))
	} catch {
		name = basename(abspath)
	}
	if (HEX64.test(name)) return name
	return OLLAMA_BLOB.exec(name)?.[1]
}

/** Which paths differ, appeared or disappeared between two `{path: hash or fingerprint}` maps. */
export function diffFiles(recorded: ReadonlyMap<string, string>, current: ReadonlyMap<string, string>): FileChanges {
	const changed: string[] = []
	const removed: string[] = []
	for (const [path, value] of recorded) {
		const now = current.get(path)
		if (now === undefined) removed.push(path)
		else if (now !== value) changed.push(path)
	}
	const added = [...current.keys()].filter((p) => !recorded.has(p))
	return { changed: changed.sort(compareBytes), added: added.sort(compareBytes), removed: removed.sort(compareBytes) }
}

/** True when a diff found anything. */
export function hasChanges(changes: FileChanges): boolean {
	return changes.changed.length + changes.added.length + changes.removed.length > 0
}
