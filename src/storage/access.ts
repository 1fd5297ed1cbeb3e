import { access } from 'node:fs/promises';

/** Whether this process may access `p` with `mode` (fs.constants R_OK/W_OK/X_OK); never throws. */
export async function canAccess(p: string, mode: number): Promise<boolean> {
  try {
    await access(p, mode);
    return true;
  } catch {
    return false;
  }
}
