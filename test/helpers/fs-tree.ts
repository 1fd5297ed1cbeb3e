import { readdir } from 'node:fs/promises';
import path from 'node:path';

/** Every entry below `dir`, as sorted relative POSIX paths (symlinks listed, not followed). */
export async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const d of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      out.push(r);
      if (d.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out.sort();
}
