// The live handler calls of a VM, found by the id that their `req` and `res` objects carry.
// A dictionary would hash twice per request; slots in an array are found by index. An id is
// the slot in its low 32 bits and a serial number above them, so an object that outlives its
// call finds nothing even after its slot was reused.

/// Live calls by id, in reused slots.
struct LuaCallTable {
    private var slots: [LuaHandlerCall?] = []
    private var freeSlots: [Int] = []
    private var serial = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// A new id, in a free slot; the call made with it is stored with `self[id] = call`.
    mutating func reserveID() -> Int {
        serial += 1
        let slot: Int
        if let reused = freeSlots.popLast() {
            slot = reused
        } else {
            slot = slots.count
            slots.append(nil)
        }
        return serial << 32 | slot
    }

    /// The live call with this id; setting nil ends it and frees its slot.
    subscript(id: Int) -> LuaHandlerCall? {
        get {
            let slot = id & 0xFFFF_FFFF
            guard slot < slots.count, let call = slots[slot], call.id == id else { return nil }
            return call
        }
        set {
            let slot = id & 0xFFFF_FFFF
            guard slot < slots.count else { return }
            if let newValue {
                if slots[slot] == nil { count += 1 }
                slots[slot] = newValue
            } else if let call = slots[slot], call.id == id {
                slots[slot] = nil
                count -= 1
                freeSlots.append(slot)
            }
        }
    }
}
