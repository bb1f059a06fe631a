/**
 * `npm run container`: the container's root filesystem, in dist/container/, for the top-level
 * Containerfile (`FROM scratch`, since no base image can be pulled here): the compiled binary, the shared
 * libraries `ldd` names for it (and nothing else), an /etc/passwd with the non-root user the image runs
 * as, and an empty /data for the registry and its state. Then, for example:
 *
 *     buildah bud --format docker -f Containerfile -t imageworks-loader dist/container
 *     podman run -p 8765:8765 -v ./configs:/data -e IMAGEWORKS_API_TOKEN=secret imageworks-loader
 */
import { $ } from 'bun'
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

const ROOT = join(import.meta.dir, '..')
const BINARY = join(ROOT, 'dist', 'imageworks-loader')
const OUT = join(ROOT, 'dist', 'container')
/** The image's user: not root, and a number so no name lookup is needed. */
export const UID = 10001

if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run "npm run build" first`)
rmSync(OUT, { recursive: true, force: true })
const rootfs = join(OUT, 'rootfs')
const put = (path: string, from: string) => {
	mkdirSync(dirname(join(rootfs, path)), { recursive: true })
	copyFileSync(from, join(rootfs, path)) // follows symlinks: the library itself lands at the name ldd gave
}

put('/usr/local/bin/imageworks-loader', BINARY)
chmodSync(join(rootfs, 'usr/local/bin/imageworks-loader'), 0o755)

// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
const ldd = await $`ldd ${BINARY}`.quiet().text()
const libraries = [...ldd.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1] as string)
if (!libraries.some((l) => l.includes('ld-linux'))) throw new Error(`ldd named no dynamic loader:\n${ldd}`)
for (const library of libraries) put(library, library)

mkdirSync(join(rootfs, 'etc'), { recursive: true })
writeFileSync(join(rootfs, 'etc/passwd'), `root:x:0:0:root:/root:/sbin/nologin\nloader:x:${UID}:${UID}:imageworks-loader:/data:/sbin/nologin\n`)
writeFileSync(join(rootfs, 'etc/group'), `root:x:0:\nloader:x:${UID}:\n`)
mkdirSync(join(rootfs, 'tmp'), { recursive: true })
chmodSync(join(rootfs, 'tmp'), 0o1777)
mkdirSync(join(OUT, 'data'), { recursive: true })

console.log(`dist/container: ${libraries.length} libraries beside the binary (${libraries.join(', ')})`)
console.log('build it with: buildah bud --format docker -f Containerfile -t imageworks-loader dist/container')
