// The live handler calls of a VM, found by the id that their `req` and `res` objects carry.
// A dictionary would hash twice per request; slots in an array are found by index. An id is
// the slot in its low 20 bits and a serial number above them, so an object that outlives its
// call finds nothing even after its slot was reused. Ids stay below 2^62: an object is its
// id shifted left by two (mw_pushobject), and the serial wraps only after 2^42 calls.

/// Live calls by id, in reused slots.
struct LuaCallTable {
    private static let slotBits = 20
    private static let slotMask = 1 << slotBits - 1
    private static let serialLimit = 1 << (62 - slotBits)

    private var slots: [LuaHandlerCall?] = []
    private var freeSlots: [Int] = []
    private var serial = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// A new id, in a free slot, for a call then stored with `insert`; nil when a million
    /// calls are live already.
    mutating func reserveID() -> Int? {
        let slot: Int
        if let reused = freeSlots.popLast() {
            slot = reused
        } else {
            guard slots.count <= Self.slotMask else { return nil }
            slot = slots.count
            slots.append(nil)
        }
        serial = serial + 1 == Self.serialLimit ? 1 : serial + 1
        return serial << Self.slotBits | slot
    }

    /// Stores a call made with an id from `reserveID`.
    mutating func insert(_ call: LuaHandlerCall) {
        slots[call.id & Self.slotMask] = call
        count += 1
    }

    /// Ends a call: its id finds nothing from now on, and its slot is free again.
    mutating func remove(_ call: LuaHandlerCall) {
        let slot = call.id & Self.slotMask
        guard slots[slot] === call else { return }
        slots[slot] = nil
        count -= 1
        freeSlots.append(slot)
    }

    /// The live call with this id.
    subscript(id: Int) -> LuaHandlerCall? {
        let slot = id & Self.slotMask
        guard slot < slots.count, let call = slots[slot], call.id == id else { return nil }
        return call
    }
}
