local orphan = {}
orphan.value = 1 +
return orphan
