//! A minimal pcap writer: Ethernet + IPv4 + UDP frames on loopback addresses, so tshark can
//! dissect bytes we encoded without any socket being involved.

use std::net::Ipv4Addr;

/// Builds a classic little-endian pcap file (LINKTYPE_ETHERNET) in memory.
pub struct Pcap {
    buf: Vec<u8>,
    n: u32,
}

impl Default for Pcap {
    fn default() -> Self {
        Self::new()
    }
}

impl Pcap {
    /// An empty capture.
    pub fn new() -> Self {
        let mut buf = Vec::new();
        buf.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&0i32.to_le_bytes());
        buf.extend_from_slice(&0u32.to_le_bytes());
        buf.extend_from_slice(&65535u32.to_le_bytes());
        buf.extend_from_slice(&1u32.to_le_bytes());
        Pcap { buf, n: 0 }
    }

    /// Appends one UDP datagram.
    pub fn udp(&mut self, src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) {
        let udp_len = 8 + payload.len();
        let mut ip = Vec::with_capacity(20 + udp_len);
        ip.extend_from_slice(&[0x45, 0]);
        ip.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
        ip.extend_from_slice(&(self.n as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 64, 17, 0, 0]);
        ip.extend_from_slice(&src.0.octets());
        ip.extend_from_slice(&dst.0.octets());
        let mut sum: u32 = ip
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        ip.extend_from_slice(&src.1.to_be_bytes());
        ip.extend_from_slice(&dst.1.to_be_bytes());
        ip.extend_from_slice(&(udp_len as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0]); // no UDP checksum (allowed on IPv4)
        ip.extend_from_slice(payload);
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&ip);
        self.n += 1;
        self.buf
            .extend_from_slice(&(1_700_000_000 + self.n).to_le_bytes());
        self.buf.extend_from_slice(&0u32.to_le_bytes());
        self.buf
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&frame);
    }

    /// Number of packets written.
    pub fn len(&self) -> u32 {
        self.n
    }

    /// The file bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}
