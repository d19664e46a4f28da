//! The landlock backend's `connect` in the `allowlist` mode, performed by the seccomp supervisor.
//!
//! Why: Landlock's TCP rules name a port, not an address, so its rule for the proxy's port would
//! also let a command reach any other host listening on that port number. Every `connect` is sent
//! to the supervisor (see [`super::notify`]), which copies the address once from the caller's
//! memory, allows only `127.0.0.1:<proxy port>`, and then connects the caller's own socket (a
//! `pidfd_getfd` duplicate) to its copy: nothing the caller changes afterwards can redirect it.
//!
//! Invariants: any other address or family is `EACCES` and nothing is connected; the connect to
//! the proxy's loopback listener does not wait on the network (it is accepted into its backlog).

use std::os::fd::AsRawFd;

use super::notify::{Call, errno};

/// Handles a notified `connect(fd, addr, len)` with `port` the only allowed destination.
pub(crate) fn connect(call: &Call, port: u16) -> Result<i64, i32> {
    let [fd, addr, len, ..] = call.args;
    let size = std::mem::size_of::<libc::sockaddr_in>();
    if (len as usize) < size {
        return Err(libc::EACCES);
    }
    let raw = call.read(addr, size)?;
    let family = u16::from_ne_bytes([raw[0], raw[1]]);
    let want_port = u16::from_be_bytes([raw[2], raw[3]]);
    let ip = [raw[4], raw[5], raw[6], raw[7]];
    if i32::from(family) != libc::AF_INET || want_port != port || ip != [127, 0, 0, 1] {
        return Err(libc::EACCES);
    }
    let sock = call.take_fd(fd)?;
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: a valid sockaddr_in of the size given, on a descriptor we own.
    let r = unsafe {
        libc::connect(
            sock.as_raw_fd(),
            (&sin as *const libc::sockaddr_in).cast(),
            size as libc::socklen_t,
        )
    };
    if r < 0 { Err(errno()) } else { Ok(0) }
}
