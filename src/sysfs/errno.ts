/** The errno name ("ENOENT", "EACCES", ...) of a failed fs call; EIO when it carries none. */
export function errnoOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : 'EIO';
}
